"""The roles' action plugin: our modules run on the host by a constant bootstrap, everything else is data on
its standard input, with a stand-in for ``AnsibleModule`` that keeps the module's argument rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.unit.ansible_modules import ACTION, ROLES, run_action

TOY = '''
ARGUMENT_SPEC = dict(
    text=dict(type="str", required=True, no_log=True),
    ports=dict(type="list", elements="int", default=[]),
    install=dict(type="bool", default=True),
    run=dict(type="list", elements="str", default=[]),
)


def main(module=None):
    if module is None:
        from ansible.module_utils.basic import AnsibleModule

        module = AnsibleModule(argument_spec=ARGUMENT_SPEC)
    p = module.params
    out = None
    if p["run"]:
        rc, out, err = module.run_command(p["run"], check_rc=True, data=p["text"])
    module.exit_json(changed=False, params=p, out=out)
'''


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    (tmp_path / "library").mkdir()
    path = tmp_path / "library" / "toy.py"
    path.write_text(TOY)
    return path


def test_values_reach_the_module_as_they_were_given_never_as_code_or_shell_text(toy):
    hostile = "'; touch /tmp/cp-pwned; echo '{{ lookup('pipe', 'id') }}\"$(id)`id`\n\x00"
    result = run_action(toy, {"text": hostile, "ports": ["80", 8080], "install": "no", "run": ["cat"]})
    assert result["params"] == {"text": hostile, "ports": [80, 8080], "install": False, "run": ["cat"]}
    assert result["out"] == hostile and not Path("/tmp/cp-pwned").exists()
    assert hostile not in ACTION.command("python3")  # the command is a constant: the data goes on stdin


@pytest.mark.parametrize("args, message", [
    ({}, "missing required arguments: text"),
    ({"text": "x", "colour": "red"}, "Unsupported parameters: colour"),
    ({"text": "x", "install": "maybe"}, "install: not a boolean"),
    ({"text": "x", "ports": "80"}, "ports: not a list"),
    ({"text": 7}, "text: not a string"),
])
def test_the_stand_in_refuses_what_ansible_module_would(toy, args, message):
    result = run_action(toy, args)
    assert result["failed"] is True and result["msg"].startswith(message), result


def test_a_json_text_that_an_older_ansible_core_templated_into_a_structure_arrives_as_our_documents_text(toy):
    """ansible-core 2.18 turns a templated string that spells a list or mapping into one; our documents (records,
    the proxy's) are compact sorted JSON, which the module then gets back to the letter."""
    text = json.dumps({"b": [1, "x"], "a": {"c": None}}, sort_keys=True, separators=(",", ":"))
    result = run_action(toy, {"text": json.loads(text)})
    assert result["params"]["text"] == text


def test_a_failing_command_under_check_rc_fails_the_task_with_its_error(toy):
    result = run_action(toy, {"text": "x", "run": [sys.executable, "-c", "import sys; sys.exit('no haproxy here')"]})
    assert result["failed"] is True and result["msg"] == "no haproxy here" and result["rc"] == 1


def test_a_module_that_dies_without_a_result_is_a_failure_naming_its_error(tmp_path):
    (tmp_path / "library").mkdir()
    broken = tmp_path / "library" / "broken.py"
    broken.write_text("ARGUMENT_SPEC = {}\ndef main(module):\n    raise RuntimeError('dockerd socket gone')\n")
    result = run_action(broken, {})
    assert result["failed"] is True and "RuntimeError: dockerd socket gone" in result["msg"]


def test_the_roles_module_utils_travel_with_the_module():
    doc = ACTION.payload(ROLES / "cp_pods" / "library" / "cp_pods.py", {})
    assert list(doc["utils"]) == ["ansible.module_utils.cp_fence", "ansible.module_utils.cp_podformat"]
    assert doc["utils"]["ansible.module_utils.cp_podformat"] == (ROLES / "cp_pods" / "module_utils" /
                                                                "cp_podformat.py").read_text()


def test_every_module_of_ours_has_the_action_plugin_of_its_name():
    for module in sorted(ROLES.glob("*/library/*.py")):
        plugin = module.parent.parent / "action_plugins" / module.name
        assert plugin.resolve() == (ROLES / "cp_pods" / "action_plugins" / "cp_pods.py").resolve(), module
        assert "ARGUMENT_SPEC = dict(" in module.read_text() and "def main(module=None)" in module.read_text()
