"""The hosts are the truth for every object: runners with no state, other runners and the master share one
fleet without undoing each other, and the fleet lock admits one holder. Real sandbox, real SSH."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, pods_of, rc_manifest, ssh, wait_for, write_manifest
from tests.e2e.test_master import Master
from tests.e2e.test_services import SERVE_HOSTNAME, get, minions

pytestmark = pytest.mark.e2e
LOCK_DIR = "/var/lib/cluster-pilot/apply.lock"
RECORDS = "/var/lib/cluster-pilot/objects.json"


def app(name: str, port: int, replicas: int = 2) -> tuple[dict, dict]:
    rc = rc_manifest(name, replicas, command=SERVE_HOSTNAME, labels={"name": name},
                     ports=[{"name": "http", "containerPort": 80}])
    svc = {"kind": "Service", "apiVersion": "v1beta1", "id": name, "port": port, "containerPort": "http",
           "selector": {"name": name}, "labels": {"name": name}}
    return rc, svc


def lonely(name: str = "lonely") -> dict:
    return {"kind": "Pod", "apiVersion": "v1beta1", "id": name, "labels": {"name": name},
            "desiredState": {"manifest": {"version": "v1beta1", "id": name, "containers": [
                {"name": "c", "image": "busybox", "command": ["sleep", "2147483647"]}]}}}


class Runner:
    """A CI job: a state dir of its own (empty at first), the fleet's inventory."""

    def __init__(self, home: Path, inventory: Path) -> None:
        self.home, self.inventory = home, inventory
        home.mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, check: bool = True, inventory: bool = True) -> subprocess.CompletedProcess:
        return cli(*args, *(("-i", str(self.inventory)) if inventory else ()), home=self.home, check=check)


def answers_everywhere(sandbox, port: int) -> bool:
    try:
        return all(get(m.address, port, timeout=3) for m in minions(sandbox))
    except OSError:
        return False


@pytest.fixture
def runners(sandbox):
    """Short state dirs: SSH's control sockets live there, and a socket path has at most 107 bytes."""
    made: list[str] = []

    def fresh(name: str) -> Runner:
        made.append(tempfile.mkdtemp(prefix=f"cp-{name}-", dir="/tmp"))
        return Runner(Path(made[-1]), sandbox.inventory)

    yield fresh
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_a_fresh_runner_keeps_what_another_applied(sandbox, runners, tmp_path):
    rc, svc = app("shop", 8090)
    files = ["-f", str(write_manifest(tmp_path / "shop-rc.json", rc)),
             "-f", str(write_manifest(tmp_path / "shop-svc.json", svc))]
    a, b, c = runners("a"), runners("b"), runners("c")
    a("apply", *files)
    wait_for(lambda: answers_everywhere(sandbox, 8090), 30, "shop to answer on every minion")

    pod = ["-f", str(write_manifest(tmp_path / "lonely.json", lonely()))]
    planned = b("plan", *pod, check=False)
    assert planned.returncode == 2, planned.stderr
    assert "service proxy" not in planned.stdout and "+ lonely" in planned.stdout, planned.stdout
    b("apply", *pod)
    assert answers_everywhere(sandbox, 8090)

    services = json.loads(c("get", "svc", "-o", "json").stdout)["items"]
    shop = next(s for s in services if s["id"] == "shop")
    assert len(shop["endpoints"]) == 2, shop
    controllers = json.loads(c("get", "rc", "-o", "json").stdout)["items"]
    assert next(r for r in controllers if r["id"] == "shop")["replicas"] == 2
    assert "replicas: 2" in c("describe", "rc", "shop").stdout
    again = c("plan", *files, check=False)
    assert again.returncode == 0, again.stdout + again.stderr

    c("scale", "rc", "shop", "--replicas", "3")
    assert len(pods_of(sandbox, "shop")) == 3
    assert json.loads(a("get", "rc", "shop", "-o", "json").stdout)["replicas"] == 3  # A sees C's change
    assert answers_everywhere(sandbox, 8090)

    b("delete", "pods/lonely")
    a("delete", *files)
    assert not pods_of(sandbox, "shop")
    assert not any(s["id"] == "shop" for s in json.loads(c("get", "svc", "-o", "json").stdout)["items"])
    for m in minions(sandbox):  # lonely's tombstone, on every minion since B's delete, went with A's run
        doc = json.loads(ssh(sandbox, m.address, f"cat {RECORDS}").stdout)
        names = {(o["kind"], o["name"]): o["body"] for o in doc["objects"]}
        assert ("Pod", "lonely") not in names and doc["horizon"] > 0, (m.name, doc)
        assert names[("Service", "shop")] is None, (m.name, doc)  # A's own: kept until every minion has it


@pytest.mark.slow
def test_master_and_cli_on_one_fleet(sandbox_home, sandbox, runners, tmp_path):
    cli_rc, cli_svc = app("cliweb", 8091)
    m_rc, m_svc = app("mweb", 8092)
    cli_files = ["-f", str(write_manifest(tmp_path / "cli-rc.json", cli_rc)),
                 "-f", str(write_manifest(tmp_path / "cli-svc.json", cli_svc))]
    m_files = ["-f", str(write_manifest(tmp_path / "m-rc.json", m_rc)),
               "-f", str(write_manifest(tmp_path / "m-svc.json", m_svc))]
    runner = runners("cli")
    runner("apply", *cli_files)
    master = Master(sandbox_home, "--insecure-loopback", "--resync", "2").start()  # whole passes are what is tested
    try:
        start = master.passes()
        wait_for(lambda: master.passes() >= start + 3, 60, "three master passes")
        assert answers_everywhere(sandbox, 8091), "the master's passes took the CLI's service down"
        for resource in ("replicationControllers", "services"):  # the whole fleet, the CLI's read-only
            listed = {i["id"]: i for i in master.get(f"/api/v1beta1/{resource}")["items"]}
            assert listed["cliweb"]["managedBy"] == "apply set 'default'", (resource, listed)
        assert master.get("/api/v1beta1/replicationControllers/cliweb")["currentState"]["replicas"] == 2
        refused = kubecfg(sandbox_home, "-h", master.url, "delete", "replicationControllers/cliweb")
        assert "managed by apply set 'default'; change it with cluster-pilot apply" in refused.stdout + refused.stderr

        cli("apply", "--server", master.url, *m_files, home=sandbox_home)
        wait_for(lambda: answers_everywhere(sandbox, 8092), 120, "the master's service to answer")

        refused = runner("apply", *m_files, check=False)
        assert refused.returncode == 1
        assert f"managed by the master at {master.url}; use --server" in refused.stderr, refused.stderr
        runner("apply", "-f", str(write_manifest(tmp_path / "other.json", lonely("other"))))
        assert answers_everywhere(sandbox, 8092), "a CLI apply took the master's service down"
        assert len(pods_of(sandbox, "mweb")) == 2

        reverse = cli("apply", "--server", master.url, "-f", str(tmp_path / "cli-svc.json"), home=sandbox_home,
                      check=False)
        assert reverse.returncode != 0 and "apply set 'default'" in reverse.stdout + reverse.stderr

        start = master.passes()
        wait_for(lambda: master.passes() >= start + 3, 60, "three more master passes")
        log = master.log.read_text()[-3000:]
        assert answers_everywhere(sandbox, 8091) and answers_everywhere(sandbox, 8092), log
        for path in ("replicationControllers/mweb", "services/mweb"):
            assert kubecfg(sandbox_home, "-h", master.url, "delete", path).returncode == 0
        wait_for(lambda: not pods_of(sandbox, "mweb"), 120, "the master to remove its pods")
    finally:
        master.kill()
    runner("delete", *cli_files)
    runner("delete", "pods/other")


def test_damaged_labels_are_reported_and_change_nothing(sandbox_home, sandbox, runners, tmp_path):
    m1 = minions(sandbox)[0]
    made = ssh(sandbox, m1.address, "docker run -d --name foreign-x --label io.cluster-pilot.pod=foreign "
                                    "--label io.cluster-pilot.container=POD --label io.cluster-pilot.ports=garbage "
                                    "busybox sleep 2147483647")
    assert made.returncode == 0, made.stderr
    try:
        planned = runners("d")("plan", "-f", str(write_manifest(tmp_path / "p.json", lonely("calm"))), check=False)
        assert planned.returncode == 2, planned.stderr
        assert f"warning: {m1.name}: container foreign-x" in planned.stderr, planned.stderr
        master = Master(sandbox_home, "--insecure-loopback", "--resync", "2").start()
        try:
            wait_for(lambda: "container foreign-x" in master.log.read_text(), 120, "the master to report foreign-x")
            start = master.passes()
            wait_for(lambda: master.passes() >= start + 2, 60, "two more master passes")
            assert "Traceback" not in master.log.read_text()  # a pass may fail for other reasons, never this one
        finally:
            master.kill()
        assert any(c["name"] == "foreign-x" for c in managed_containers(sandbox))  # left alone
    finally:
        ssh(sandbox, m1.address, "docker rm -f foreign-x")


def test_two_applies_at_once_from_empty_state_dirs(sandbox, runners, tmp_path):
    rc, _ = app("twin", 8093, replicas=3)
    path = str(write_manifest(tmp_path / "twin.json", rc))
    results: dict[str, subprocess.CompletedProcess] = {}
    start = threading.Barrier(2)

    def go(name: str) -> None:
        runner = runners(name)
        start.wait()
        results[name] = runner("apply", "-f", path, check=False)

    threads = [threading.Thread(target=go, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr for n, r in results.items()}
    errs = [r.stderr for r in results.values()]
    assert any("waiting for the fleet lock" in e or "no changes" in e for e in errs), errs
    assert len(pods_of(sandbox, "twin")) == 3
    assert len([c for c in managed_containers(sandbox) if c["controller"] == "twin" and c["container"] == "app"]) == 3
    runners("x")("delete", "-f", path)


def test_a_stale_holder_is_taken_over(sandbox, runners, tmp_path):
    lock_host = minions(sandbox)[0]
    ghost = json.dumps({"who": "ghost", "host": "gone", "pid": 999999, "since": 0, "token": "t", "runner": "r",
                        "expires": 0})
    made = ssh(sandbox, lock_host.address, f"mkdir -p {LOCK_DIR} && echo '{ghost}' > {LOCK_DIR}/owner")
    assert made.returncode == 0, made.stderr
    runner = runners("s")
    path = str(write_manifest(tmp_path / "after-ghost.json", lonely("after-ghost")))
    runner("apply", "-f", path, "--lock-timeout", "10")
    assert ssh(sandbox, lock_host.address, f"test -e {LOCK_DIR}").returncode != 0  # released after the run
    runner("delete", "pods/after-ghost")


def _twice_at_once(runners, path: str, names: tuple[str, str]) -> dict[str, subprocess.CompletedProcess]:
    results: dict[str, subprocess.CompletedProcess] = {}
    start = threading.Barrier(2)

    def go(name: str) -> None:
        runner = runners(name)
        start.wait()
        results[name] = runner("apply", "-f", path, "--lock-timeout", "120", check=False)

    threads = [threading.Thread(target=go, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return results


def _done_but_for(stopped: str, run: subprocess.CompletedProcess) -> bool:
    """An apply did all its work: exit 0, or 1 only because it names the stopped minion unreachable (apply's
    exit status says whether the whole fleet matches), every other host ok, and the lock taken."""
    said = run.stderr
    return "Traceback" not in said and "cannot take the fleet lock" not in said and "nothing was changed" not in said and (
        run.returncode == 0 or (run.returncode == 1 and f"{stopped}: unreachable" in said
                                and "FAILED   " not in said))


def test_with_the_first_lock_host_down_applies_from_empty_state_dirs_succeed_one_at_a_time(sandbox, runners,
                                                                                            tmp_path):
    """The first minion was the only lock host: now it is one of three, and a majority is enough."""
    first, *others = minions(sandbox)
    sandbox.stop(first.name)
    try:
        path = str(write_manifest(tmp_path / "no-first.json", lonely("no-first")))
        alone = runners("n")("apply", "-f", path, "--lock-timeout", "30", check=False)
        assert _done_but_for(first.name, alone), alone.stderr
        assert [c["minion"] for c in managed_containers(sandbox) if c["pod"] == "no-first"] != []
        rc, _ = app("twin-down", 8094, replicas=3)
        path = str(write_manifest(tmp_path / "twin-down.json", rc))
        results = _twice_at_once(runners, path, ("p", "q"))
        assert all(_done_but_for(first.name, r) for r in results.values()), {n: r.stderr for n, r in results.items()}
        errs = [r.stderr for r in results.values()]
        assert any("waiting for the fleet lock" in e or "no changes" in e for e in errs), errs
        assert len([c for c in managed_containers(sandbox)
                    if c["controller"] == "twin-down" and c["container"] == "app"]) == 3
        for m in others:  # released on every lock host that answers
            assert ssh(sandbox, m.address, f"test -e {LOCK_DIR}").returncode != 0, m.name
    finally:
        sandbox.start(first.name)
    runners("n")("delete", "pods/no-first")
    runners("n")("delete", "rc/twin-down")


HELD_PYTHON = "/usr/local/bin/cp-held-python3"
# Our modules' bootstrap (the roles' action plugin) waits while /tmp/cp-hold exists; every other script (the
# lock, observation) runs at once. So a runner holds the lock and is about to write when it is frozen.
HOLD = """#!/bin/sh
case "$*" in *module_globals*)
    if [ -e /tmp/cp-hold ]; then touch /tmp/cp-held; while [ -e /tmp/cp-hold ]; do sleep 0.1; done; fi;;
esac
exec /usr/bin/python3 "$@"
"""


def test_a_runner_frozen_past_its_lease_cannot_write_after_its_successor(sandbox, runners, tmp_path):
    import os
    import signal
    import sys

    import yaml

    everyone = minions(sandbox)
    for m in everyone:
        made = ssh(sandbox, m.address, f"cat > {HELD_PYTHON} <<'EOF'\n{HOLD}EOF\nchmod +x {HELD_PYTHON} && "
                                       "rm -f /tmp/cp-held && touch /tmp/cp-hold")
        assert made.returncode == 0, made.stderr
    doc = yaml.safe_load(sandbox.inventory.read_text())
    for host in doc["all"]["children"]["minions"]["hosts"].values():
        host["ansible_python_interpreter"] = HELD_PYTHON
    held_inventory = tmp_path / "held.yml"
    held_inventory.write_text(yaml.safe_dump(doc))
    frozen_home = runners("f").home
    path = str(write_manifest(tmp_path / "frozen.json", lonely("frozen-x")))
    frozen = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "apply", "-f", path, "-i", str(held_inventory)],
                              env=dict(os.environ, CLUSTER_PILOT_HOME=str(frozen_home)), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(ssh(sandbox, m.address, "test -e /tmp/cp-held").returncode == 0 for m in everyone),
                 120, "the frozen runner to hold the lock and reach its first write")
        frozen.send_signal(signal.SIGSTOP)  # its lease runs out: no renewal comes
        successor = runners("s")
        after = successor("apply", "-f", str(write_manifest(tmp_path / "successor.json", lonely("successor"))),
                          "--lock-timeout", "90", check=False)
        assert after.returncode == 0, after.stderr
        for m in everyone:
            ssh(sandbox, m.address, "rm -f /tmp/cp-hold")
        frozen.send_signal(signal.SIGCONT)
        out, err = frozen.communicate(timeout=300)
        assert frozen.returncode == 1 and "fencing token" in out + err, out + err
        assert not any(c["pod"] == "frozen-x" for c in managed_containers(sandbox))  # it created nothing
        assert [c["pod"] for c in managed_containers(sandbox) if c["pod"] == "successor"] == ["successor"]
        for m in everyone:  # nor did it write its records over the successor's
            records = json.loads(ssh(sandbox, m.address, f"cat {RECORDS}").stdout)["objects"]
            live = {o["name"] for o in records if o["body"] is not None}
            assert "successor" in live and "frozen-x" not in live, (m.name, live)
    finally:
        for m in everyone:
            ssh(sandbox, m.address, f"rm -f /tmp/cp-hold /tmp/cp-held {HELD_PYTHON}")
        if frozen.poll() is None:
            frozen.send_signal(signal.SIGCONT)
            frozen.kill()
            frozen.communicate()
    runners("s")("delete", "pods/successor")


def kubecfg(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Our ``kubecfg`` (the master's token from the state dir)."""
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "cluster_pilot.cli.kubecfg", *args], capture_output=True, text=True,
                          timeout=300,
                          env=dict(os.environ, CLUSTER_PILOT_HOME=str(home)), stdin=subprocess.DEVNULL)


def _metrics(master: Master) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{master.port}/metrics", timeout=10) as resp:
        return resp.read().decode()


@pytest.mark.parametrize("damage", ["directory", "binary"])
def test_damaged_records_are_set_aside_and_rewritten_by_one_apply(sandbox, runners, tmp_path, damage):
    """A minion's records replaced by a directory or by binary: one apply sets them aside with a warning naming
    the minion, rewrites them from the other minions' copies, and the next plan shows no change."""
    runner = runners("r")
    files = ["-f", str(write_manifest(tmp_path / "p.json", lonely(f"records-{damage}")))]
    runner("apply", *files)
    m1 = minions(sandbox)[0]
    spoil = (f"rm -f {RECORDS} && mkdir {RECORDS}" if damage == "directory" else
             f"printf '\\377\\376\\000binary' > {RECORDS}")
    assert ssh(sandbox, m1.address, spoil).returncode == 0
    try:
        applied = runner("apply", *files)
        assert m1.name in applied.stderr + applied.stdout, applied.stderr
        planned = runner("plan", *files, check=False)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        kept = ssh(sandbox, m1.address, f"test -f {RECORDS} && ls -d {RECORDS}.damaged-*")
        assert kept.returncode == 0 and kept.stdout.strip(), kept.stderr
    finally:
        ssh(sandbox, m1.address, f"rm -rf {RECORDS}.damaged-*; test -f {RECORDS} || rm -rf {RECORDS}")
        runner("delete", *files, check=False)
