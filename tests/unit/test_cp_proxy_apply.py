"""The cp_proxy_apply module, without HAProxy: its configuration from the proxy document, and the module on a
host made of temporary directories, with a stand-in for ``haproxy -c`` and for HAProxy's master process."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import jinja2
import pytest

from cluster_pilot.plan.proxy import Backend, ProxiedService, proxy_document
from tests.unit.ansible_modules import ROLES, load_module, module_args
from tests.waits import wait_for

cp_proxy = load_module("cp_proxy", "cp_proxy_apply")

# accepts a configuration unless it says "bad", as haproxy -c -q -f FILE would
FAKE_CHECK = """#!/bin/sh
if grep -q bad "$4"; then echo "[ALERT] parsing [$4:3] : unknown keyword 'bad'" >&2; exit 1; fi
"""


def _template(name: str, **variables) -> str:
    """As the role's lookup renders it (Ansible's template defaults: trim_blocks)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLES / "cp_proxy" / "templates"), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(name).render(**variables)


def _document() -> str:
    web = ProxiedService("web", 8000, "TCP", (Backend("web-1", "m1", "10.0.0.1", 30001),
                                              Backend("web-2", "m2", "10.0.0.2", 30002)))
    return proxy_document([web, ProxiedService("redis.master", 6379, "TCP", ())])


def test_each_service_port_listens_and_balances_over_its_backends():
    config = _template("haproxy.cfg.j2", cp_proxy_data=json.loads(_document()))
    sections = config.split("\nlisten ")[1:]
    assert [s.splitlines()[:2] for s in sections] == [["web_8000", "    bind :8000"],
                                                      ["redis.master_6379", "    bind :6379"]]
    assert [line.strip() for line in sections[0].splitlines() if "server " in line] == [
        "server web-1_30001 10.0.0.1:30001 check", "server web-2_30002 10.0.0.2:30002 check"]
    assert "    server " not in sections[1]
    assert "\nlisten " not in _template("haproxy.cfg.j2", cp_proxy_data={"services": []})


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A minion's paths below tmp_path, supervised by runit; ``haproxy -c`` stood in for by a script."""
    check = tmp_path / "haproxy"
    check.write_text(FAKE_CHECK)
    check.chmod(0o755)
    (tmp_path / "etc" / "service").mkdir(parents=True)
    paths = {"HAPROXY": check, "SYSTEMD_RUNNING": tmp_path / "run" / "systemd" / "system",
             "SYSTEMD_UNIT": tmp_path / "cp-proxy.service", "RUNIT_SERVICE": tmp_path / "etc" / "sv" / "cp-proxy",
             "RUNIT_ENABLED": tmp_path / "etc" / "service", "RUNSVDIR": tmp_path / "no-runsvdir"}
    for name, path in paths.items():
        monkeypatch.setattr(cp_proxy, name, str(path))
    monkeypatch.setattr(cp_proxy, "LISTEN_TIMEOUT", 0.5)
    return tmp_path


def _run(host: Path, capsys, config: str, document: str = '{"services":[]}', ports=(), install=True) -> dict:
    args = {"config": config, "document": document, "ports": list(ports), "run_script": "#!/bin/sh\nexec haproxy\n",
            "systemd_unit": "[Service]\n", "directory": str(host / "conf"), "pidfile": str(host / "cp-proxy.pid"),
            "install": install}
    with module_args(args), pytest.raises(SystemExit):
        cp_proxy.main()
    return json.loads(capsys.readouterr().out)


def test_a_configuration_haproxy_rejects_changes_nothing(host, capsys):
    assert _run(host, capsys, "global\n", document="first")["changed"] is True
    result = _run(host, capsys, "global\n  bad\n", document="second")
    assert result["failed"] is True
    assert result["msg"].startswith("haproxy -c rejected the configuration: [ALERT]") and "'bad'" in result["msg"]
    assert sorted(os.listdir(host / "conf")) == ["haproxy.cfg", "proxy.json"]  # no candidate left behind
    assert (host / "conf" / "haproxy.cfg").read_text() == "global\n"
    assert (host / "conf" / "proxy.json").read_text() == "first"


def test_a_missing_haproxy_is_not_installed_when_installing_is_off(host, capsys):
    os.unlink(cp_proxy.HAPROXY)
    result = _run(host, capsys, "global\n", install=False)
    assert (result["failed"], result["msg"]) == (True, "haproxy is not installed")
    assert not (host / "conf").exists()


def test_the_first_run_supervises_haproxy_under_runit_and_a_second_changes_nothing(host, capsys):
    first = _run(host, capsys, "global\n", document=_document())
    assert (first["changed"], first["reloaded"], first["supervisor"]) == (True, False, "runit")
    run = Path(cp_proxy.RUNIT_SERVICE) / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    assert os.readlink(host / "etc" / "service" / "cp-proxy") == cp_proxy.RUNIT_SERVICE
    assert (host / "conf" / "proxy.json").read_text() == _document()
    assert _run(host, capsys, "global\n", document=_document())["changed"] is False


@pytest.fixture
def master(host):
    """HAProxy's master as far as the module sees it: a process in the pid file that notes a SIGUSR2."""
    noted = host / "reloads"
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGUSR2, lambda *_: open(sys.argv[1], 'a').write('reload\\n'))\n"
            "open(sys.argv[1], 'w').close()\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(noted)])
    wait_for(noted.exists, 10, "the stand-in master to be ready")
    (host / "cp-proxy.pid").write_text(f"{proc.pid}\n")
    yield noted
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def test_a_running_master_is_reloaded_only_when_the_configuration_changed(host, capsys, master):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with listener:
        assert _run(host, capsys, "global\n", ports=[port])["reloaded"] is True
        wait_for(lambda: master.read_text() == "reload\n", 10, "the master to get SIGUSR2")
        again = _run(host, capsys, "global\n", ports=[port])
    assert (again["changed"], again["reloaded"]) == (False, False)
    assert master.read_text() == "reload\n"


def test_the_document_is_written_only_once_every_service_port_listens(host, capsys):
    with socket.create_server(("127.0.0.1", 0)) as free:
        closed = free.getsockname()[1]
    result = _run(host, capsys, "global\n", document=_document(), ports=[closed])
    assert result["failed"] is True and result["msg"] == f"service ports not listening after 0 s: {closed}"
    assert (host / "conf" / "haproxy.cfg").exists() and not (host / "conf" / "proxy.json").exists()


def test_write_if_changed_replaces_a_file_whole_and_only_when_it_differs(tmp_path):
    path = tmp_path / "d" / "f"
    assert cp_proxy.write_if_changed(str(path), "a", 0o600) is True
    assert cp_proxy.write_if_changed(str(path), "a") is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cp_proxy.write_if_changed(str(path), "b") is True
    assert path.read_text() == "b" and os.listdir(tmp_path / "d") == ["f"]


def test_a_pid_file_counts_only_while_its_process_lives(tmp_path):
    pidfile = tmp_path / "pid"
    assert cp_proxy.master_pid(str(pidfile)) is None
    pidfile.write_text("not a pid")
    assert cp_proxy.master_pid(str(pidfile)) is None
    pidfile.write_text(f"{os.getpid()}\n")
    assert cp_proxy.master_pid(str(pidfile)) == os.getpid()
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")
    assert cp_proxy.master_pid(str(pidfile)) is None


def test_the_pid_file_is_waited_for_as_haproxy_writes_it_after_binding(tmp_path):
    pidfile = tmp_path / "pid"
    writer = threading.Timer(0.3, lambda: pidfile.write_text(f"{os.getpid()}\n"))
    writer.start()
    try:
        assert cp_proxy.master_pid_within(str(pidfile), 10) == os.getpid()
    finally:
        writer.cancel()
    assert cp_proxy.master_pid_within(str(tmp_path / "never"), 0.2) is None
