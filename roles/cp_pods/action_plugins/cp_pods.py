"""Runs one of our modules (``cp_pods``, ``cp_proxy_apply``: the task's own name) without AnsiballZ.

A new-style module always imports ``ansible.module_utils.basic`` on the host, compiled from source on every
run: 0.35-0.45 CPU s per module run on a sandbox minion, against 0.03 s for the standard library alone, and 12
minions sharing two cores pay it one after another. Our modules need none of it: this action sends the
module's own file and the role's ``module_utils`` it imports, with the task's arguments, as one JSON document on
the standard input of ``python3 -c BOOTSTRAP`` (a constant: no argument ever becomes code or shell text), and
the bootstrap hands the module's ``main`` a small stand-in for ``AnsibleModule``. Nothing is copied to the host
and the module file stays a complete Ansible module (``ansible -m cp_pods`` still works).

The file serves every module of ours: ``roles/cp_proxy/action_plugins/cp_proxy_apply.py`` is a link to it.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from ansible.plugins.action import ActionBase

# Runs on the host: reads {"source", "path", "utils", "args"}; the module's main(module) prints the result.
BOOTSTRAP = r'''
import json, os, subprocess, sys, types
doc = json.loads(sys.stdin.buffer.read())
sys.stdin.close()
def emit(result, code):
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.exit(code)
for name, text in doc["utils"].items():
    parts = name.split(".")
    for i in range(1, len(parts)):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    util = types.ModuleType(name)
    exec(compile(text, name, "exec"), util.__dict__)
    sys.modules[name] = util
module_globals = {"__name__": "cp_module", "__file__": doc["path"]}
exec(compile(doc["source"], doc["path"], "exec"), module_globals)
TRUE, FALSE = ("yes", "true", "on", "1"), ("no", "false", "off", "0")
class Module:
    def __init__(self, spec, args):
        unknown = sorted(set(args) - set(spec))
        if unknown:
            self.fail_json(msg="Unsupported parameters: %s" % ", ".join(unknown))
        self.params, self.warnings = {}, []
        for name, option in spec.items():
            value = args.get(name)
            if value is None:
                if option.get("required"):
                    self.fail_json(msg="missing required arguments: %s" % name)
                value = option.get("default")
            kind = option.get("type", "str")
            if kind == "bool" and not isinstance(value, bool):
                if str(value).lower() not in TRUE + FALSE:
                    self.fail_json(msg="%s: not a boolean: %r" % (name, value))
                value = str(value).lower() in TRUE
            elif kind == "list":
                if not isinstance(value, list):
                    self.fail_json(msg="%s: not a list" % name)
                value = [int(v) if option.get("elements") == "int" else v for v in value]
            elif kind == "str" and isinstance(value, (list, dict)):
                # a JSON text that ansible-core before 2.19 templated into what it spells: written back in the
                # form our documents (records, the proxy's) are rendered in, so that their texts compare equal
                value = json.dumps(value, sort_keys=True, separators=(",", ":"))
            elif kind == "str" and not isinstance(value, str):
                self.fail_json(msg="%s: not a string" % name)
            self.params[name] = value
    def warn(self, warning):
        self.warnings.append(warning)
    def exit_json(self, **result):
        emit(dict(result, warnings=self.warnings) if self.warnings else result, 0)
    def fail_json(self, msg, **result):
        result.update(failed=True, msg=msg)
        emit(dict(result, warnings=self.warnings) if getattr(self, "warnings", None) else result, 1)
    def run_command(self, args, check_rc=False, environ_update=None, data=None):
        env = dict(os.environ, **(environ_update or {}))
        proc = subprocess.run(args, input=data, env=env, capture_output=True, text=True)
        if check_rc and proc.returncode != 0:
            self.fail_json(msg=(proc.stderr or proc.stdout).strip() or "%s exited %d" % (args[0], proc.returncode),
                           rc=proc.returncode, cmd=args)
        return proc.returncode, proc.stdout, proc.stderr
module_globals["main"](Module(module_globals["ARGUMENT_SPEC"], doc["args"]))
'''

_UTILS = re.compile(r"^from ansible\.module_utils\.(\w+) import", re.M)


def payload(module_path: Path, args: dict) -> dict:
    """What the bootstrap reads: the module, the role's module_utils it imports at its top, the arguments."""
    source = module_path.read_text(encoding="utf-8")
    utils_dir = module_path.parent.parent / "module_utils"
    utils = {f"ansible.module_utils.{name}": (utils_dir / f"{name}.py").read_text(encoding="utf-8")
             for name in _UTILS.findall(source)}
    return {"source": source, "path": str(module_path), "utils": utils, "args": args}


def command(interpreter: str) -> str:
    return f"{shlex.quote(interpreter)} -c {shlex.quote(BOOTSTRAP)}"


def result_of(rc: int, stdout: str, stderr: str) -> dict:
    """The module's own result (its last output line), else what went wrong, as Ansible reports a module."""
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
        if isinstance(result, dict):
            return result
    except (ValueError, IndexError):
        pass
    return {"failed": True, "rc": rc, "msg": "module failure: " + ((stderr or stdout).strip()[-1000:] or
                                                                   f"exited {rc} without a result")}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(self._task.action)
        if not found.resolved:
            return {**result, "failed": True, "msg": f"module {self._task.action} not found"}
        interpreter = str(self._templar.template(task_vars.get("ansible_python_interpreter") or "python3"))
        interpreter = "python3" if interpreter.startswith("auto") else interpreter  # as host.ssh.python_command
        data = json.dumps(payload(Path(found.plugin_resolved_path), dict(self._task.args)))
        out = self._low_level_execute_command(command(interpreter), sudoable=True, in_data=data)
        return {**result, **result_of(out["rc"], out.get("stdout", ""), out.get("stderr", ""))}
