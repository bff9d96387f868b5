"""Day-2 operations on the real sandbox: logs, exec, why a pod fails, events, and the dashboard in a real
browser (Playwright driving Debian's chromium; no browser is downloaded)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, managed_containers, rc_manifest, wait_for, write_manifest
from tests.e2e.test_master import Master

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # the dashboard's 5 s: not with another sandbox busy beside

CHROMIUM = "/usr/bin/chromium"
TALKER = ("echo out-start; echo err-start >&2; i=0; "
          "while true; do i=$((i+1)); echo tick-$i; sleep 0.5; done")
CRASHER = "echo crash-out-$(date +%s%N); echo crash-err >&2; sleep 1; exit 3"


def bare_pod(name: str, script: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", script]}]}}


def on_hosts(sandbox, pod: str, state: str | None = None) -> bool:
    return any(c["pod"] == pod and c["container"] == "app" and (state is None or c["state"] == state)
               for c in managed_containers(sandbox))


@pytest.fixture(scope="module")
def master(sandbox_home, sandbox, tmp_path_factory):
    """One master for the module, with a talker and a crash-looping pod created through it."""
    m = Master(sandbox_home).start()
    manifests = tmp_path_factory.mktemp("day2")
    for name, script in (("talker", TALKER), ("crasher", CRASHER)):
        cli("apply", "--server", m.url, "-f", str(write_manifest(manifests / f"{name}.json", bare_pod(name, script))),
            home=sandbox_home)
    wait_for(lambda: on_hosts(sandbox, "talker", "running") and on_hosts(sandbox, "crasher"), 180,
             "the talker and the crasher to run")
    yield m
    m.kill()


def test_logs_shows_both_streams_and_follows_new_lines(master, sandbox_home):
    wait_for(lambda: "tick-3" in cli("logs", "talker", home=sandbox_home).stdout, 60, "three ticks")
    done = cli("logs", "talker", home=sandbox_home)
    assert "out-start" in done.stdout and "err-start" not in done.stdout
    assert "err-start" in done.stderr
    last = max(int(n) for n in re.findall(r"tick-(\d+)", done.stdout))
    env = dict(os.environ, CLUSTER_PILOT_HOME=str(sandbox_home))
    follow = subprocess.Popen([sys.executable, "-m", "cluster_pilot", "logs", "talker", "-f", "--tail", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        seen: list[int] = []

        def newer() -> bool:
            line = follow.stdout.readline()  # blocks until the next line: the follow must deliver it
            seen.extend(int(n) for n in re.findall(r"tick-(\d+)", line))
            return bool(seen) and max(seen) > last + 2
        wait_for(newer, 60, "lines newer than the ones logged before the follow started")
    finally:
        follow.kill()
        follow.wait()


def test_logs_through_the_master_are_streamed_and_unknown_pods_are_one_line(master, sandbox_home):
    via = cli("logs", "talker", "--tail", "2", "--server", master.url, home=sandbox_home)
    assert len(via.stdout.splitlines()) == 2 and all("tick-" in line for line in via.stdout.splitlines())
    missing = cli("logs", "nope", "--server", master.url, home=sandbox_home, check=False)
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith("cluster-pilot: error: pod 'nope' not found on any minion")


def test_exec_returns_the_commands_output_and_exit_code(master, sandbox_home):
    done = cli("exec", "talker", "--", "sh", "-c", "echo inside-$HOSTNAME; echo oops >&2; exit 7",
               home=sandbox_home, check=False)
    assert done.returncode == 7
    assert done.stdout.startswith("inside-") and "oops" in done.stderr
    wrong = cli("exec", "talker", "-c", "nope", "--", "true", home=sandbox_home, check=False)
    assert wrong.returncode == 1 and wrong.stderr.strip() == \
        "cluster-pilot: error: pod 'talker' has no container 'nope' (it has: app)"


def test_a_crash_loop_shows_its_exit_code_restarts_and_an_event(master, sandbox_home):
    def crashed() -> dict | None:
        import yaml

        doc = yaml.safe_load(cli("describe", "pod", "crasher", home=sandbox_home).stdout)
        app = doc["containerStatuses"]["app"]
        last = app.get("lastState") or {}
        return doc if app["restartCount"] >= 1 and (last.get("exitCode"), last.get("reason")) == (3, "Error") else None

    doc = wait_for(crashed, 120, "describe to show exit code 3, reason Error and a restart")
    assert doc["restarts"] >= 1 and doc["containerStatuses"]["app"]["imageID"].startswith("sha256:")
    assert any("Scheduled" in e for e in doc["events"])  # describe shows the master's events too
    rows = cli("get", "pods", home=sandbox_home).stdout.splitlines()
    assert rows[0].split()[-2:] == ["RESTARTS", "AGE"]
    crasher = next(r for r in rows if r.startswith("crasher"))
    assert int(crasher.split()[-2]) >= 1

    def restart_event() -> bool:
        out = cli("get", "events", "--for", "pod/crasher", "--server", master.url, home=sandbox_home).stdout
        return "Restarted" in out and "exited with code 3" in out or "Replaced" in out
    wait_for(restart_event, 120, "a Restarted or Replaced event for the crasher")
    previous = cli("logs", "crasher", "--previous", home=sandbox_home)
    assert "crash-out-" in previous.stdout and "crash-err" in previous.stderr


def test_get_events_shows_scheduled_naming_the_node(master, sandbox_home, sandbox):
    node = next(c["minion"] for c in managed_containers(sandbox) if c["pod"] == "talker")
    out = cli("get", "events", "--for", "pod/talker", "--server", master.url, home=sandbox_home).stdout
    assert re.search(rf"Scheduled\s+pod/talker\s+assigned to {node}\b", out), out
    local = cli("get", "events", home=sandbox_home).stdout  # this machine's master store, no --server
    assert "pod/crasher" in local


# --- the dashboard ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM}: scripts/setup installs Debian's chromium")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, master, sandbox_home):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(master.url + "/ui/")
    page.fill("input[name=token]", (sandbox_home / "master-token").read_text().strip())
    page.click("button[type=submit]")
    page.wait_for_selector("#minions")
    page.evaluate("window.notReloaded = true")
    yield page
    context.close()


def test_without_the_token_the_dashboard_is_a_login_form(browser, master):
    context = browser.new_context()
    page = context.new_page()
    page.goto(master.url + "/ui/")
    assert page.locator("form#login input[name=token]").count() == 1
    assert page.locator("#minions").count() == 0
    context.close()


def test_the_dashboard_lists_minions_and_a_new_pod_within_5_s_without_reload(page, master, sandbox, sandbox_home,
                                                                             tmp_path):
    names = {m.name for m in sandbox.status()}
    assert {page.get_attribute(f"[data-minion={n}]", "data-minion") for n in names} == names
    cli("apply", "--server", master.url, "-f", str(write_manifest(tmp_path / "fresh.json",
                                                                  bare_pod("fresh", "sleep 100000"))),
        home=sandbox_home)
    wait_for(lambda: on_hosts(sandbox, "fresh", "running"), 180, "the fresh pod to run on its minion")
    page.wait_for_selector("tr[data-pod=fresh]", timeout=5_000)
    assert page.evaluate("window.notReloaded") is True


def test_a_deleted_pods_replacement_appears(page, master, sandbox, sandbox_home, tmp_path):
    cli("apply", "--server", master.url, "-f", str(write_manifest(tmp_path / "rc.json", rc_manifest("phoenix", 1))),
        home=sandbox_home)
    first = wait_for(lambda: next((c["pod"] for c in managed_containers(sandbox)
                                   if c["controller"] == "phoenix" and c["state"] == "running"), None), 180,
                     "the controller's pod to run")
    page.wait_for_selector(f"tr[data-pod={first}]", timeout=60_000)
    token = (sandbox_home / "master-token").read_text().strip()
    request = urllib.request.Request(f"{master.url}/api/v1beta1/pods/{first}", method="DELETE",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200

    def replacement() -> str | None:
        shown = page.eval_on_selector_all("tr[data-pod^=phoenix-]", "rows => rows.map(r => r.dataset.pod)")
        return next((p for p in shown if p != first), None) if first not in shown else None
    wait_for(replacement, 180, "the replacement pod on the page, the deleted one gone")
    assert page.evaluate("window.notReloaded") is True


def test_a_pods_logs_open_in_one_click(page):
    page.wait_for_selector("tr[data-pod=talker] a.logs")
    page.click("tr[data-pod=talker] a.logs")
    page.wait_for_function("document.getElementById('log').textContent.includes('tick-')")
    page.go_back()
    page.click("tr[data-pod=crasher] a[href='/ui/pods/crasher']")
    assert page.locator("#containers tr[data-container=app]").count() == 1
