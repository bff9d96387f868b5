"""``runner.LAUNCHER``: ansible-playbook as cluster-pilot starts it (its poll interval, its exit)."""

import os
import subprocess
import sys
import textwrap

from cluster_pilot.apply.runner import LAUNCHER, POLL_INTERVAL
from tests.waits import wait_for

MAIN = "from ansible.cli.playbook import main"


def _launch(*args: str, main: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The launcher as the runner starts it; ``main``: a stand-in for ansible-playbook's own, to look inside."""
    assert MAIN in LAUNCHER
    code = LAUNCHER if main is None else LAUNCHER.replace(MAIN, textwrap.dedent(main))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_launcher_starts_the_ansible_playbook_of_cluster_pilots_own_python():
    proc = _launch("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ansible-playbook [core ")
    assert f"python version = {sys.version.split()[0]}" in proc.stdout.replace("\n  ", "\n")


SHOW = """
def main():
    print(constants.DEFAULT_INTERNAL_POLL_INTERVAL, sys.argv[0], sys.argv[1:])
"""


def test_the_strategy_polls_every_20_ms_unless_the_users_configuration_says_otherwise(tmp_path):
    default = _launch("site.yml", "-e", "@vars.yml", main=SHOW, env={"ANSIBLE_CONFIG": str(tmp_path / "none.cfg")})
    assert default.stdout.split(None, 2) == [str(POLL_INTERVAL), "ansible-playbook",
                                             "['site.yml', '-e', '@vars.yml']\n"]
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\ninternal_poll_interval = 0.5\n")
    configured = _launch(main=SHOW, env={"ANSIBLE_CONFIG": str(config)})
    assert configured.stdout.split()[0] == "0.5"


def test_the_launcher_keeps_ansible_playbooks_exit_code_and_runs_its_atexit_handlers():
    failing = _launch(main="""
        def main():
            import atexit
            atexit.register(lambda: print("workers joined"))
            print("PLAY RECAP", end="")
            sys.exit(4)
    """)
    assert (failing.returncode, failing.stdout) == (4, "PLAY RECAPworkers joined\n")
    said = _launch(main="""
        def main():
            sys.exit("ERROR! the playbook could not be read")
    """)
    assert (said.returncode, said.stderr) == (1, "ERROR! the playbook could not be read\n")
    ended = _launch(main="""
        def main():
            print("ok")
    """)
    assert (ended.returncode, ended.stdout) == (0, "ok\n")


def test_a_reaped_ansible_playbook_is_closed_without_ptyprocess_wait_and_a_live_one_is_still_ended():
    import ptyprocess

    from cluster_pilot.apply.runner import _close_reaped_at_once

    _close_reaped_at_once()
    wrapped = ptyprocess.PtyProcess.close
    _close_reaped_at_once()
    assert ptyprocess.PtyProcess.close is wrapped  # once: every run calls it
    ended = ptyprocess.PtyProcess.spawn(["true"])
    wait_for(lambda: not ended.isalive(), 30, "true to end and be reaped, as ansible-runner's loop reaps it", 0.01)
    ended.close()
    assert (ended.closed, ended.delayafterclose, ended.exitstatus) == (True, 0, 0)  # closed with no wait
    live = ptyprocess.PtyProcess.spawn(["sleep", "60"])
    live.close(force=True)
    assert live.delayafterclose > 0  # waited for, as before
    assert not live.isalive() and live.signalstatus is not None  # and ended by ptyprocess
