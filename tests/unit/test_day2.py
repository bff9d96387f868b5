"""Day-2 operations, the pure parts: container states from ``docker inspect``, finding a pod's container,
the remote ``docker logs``/``exec`` commands, events derived from a pass and their bounded log, and the
dashboard's sign-in (the real FastAPI app, a Reconciler never started)."""

from __future__ import annotations

import http.client
import json
import shlex
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster_pilot.errors import UserError
from cluster_pilot.host.inspect import format_age, parse_time, restarts, status_of
from cluster_pilot.host.logs import LogOptions, check_log_options, exec_remote, locate, logs_remote
from cluster_pilot.host.observed import HostView, Observation, ObservedContainer, ObservedPod, group_pods
from cluster_pilot.master.events import minion_events, restart_events, scheduling_failures
from cluster_pilot.scheduler import Schedule, Unschedulable
from cluster_pilot.store.events import Event, EventLog


def pod(name: str, node: str = "m1", states: dict[str, str] | None = None, exit_code: int | None = None) -> ObservedPod:
    states = states or {"app": "running"}
    containers = [ObservedContainer(f"{name}-i", "x", name, "POD", "h", "running", "busybox")]
    containers += [ObservedContainer(f"{name}-{c}", "y", name, c, "h", s, "busybox", exit_code=exit_code)
                   for c, s in states.items()]
    return ObservedPod(name, node, "h", None, "Pod", {}, tuple(containers), tuple(states))


def seen(*pods: ObservedPod, down: tuple[str, ...] = ()) -> Observation:
    hosts = {p.node: HostView(p.node, True) for p in pods}
    hosts.update({n: HostView(n, False, error="no route") for n in down})
    return Observation({n: HostView(n, v.reachable, tuple(p for p in pods if p.node == n), v.error)
                        for n, v in hosts.items()})


def inspected(**state) -> dict:
    base = {"Status": "running", "Running": True, "Restarting": False, "OOMKilled": False, "ExitCode": 0,
            "StartedAt": "2026-01-02T03:04:05.123456789Z", "FinishedAt": "0001-01-01T00:00:00Z"}
    return {"Id": "abc", "Created": "2026-01-02T03:00:00Z", "RestartCount": 4, "Image": "sha256:beef",
            "State": {**base, **state}}


# --- docker inspect -> state -----------------------------------------------------------------------------
def test_a_crash_loop_between_two_runs_is_waiting_with_its_last_exit_code():
    s = status_of(inspected(Status="restarting", Running=True, Restarting=True, ExitCode=3,
                            FinishedAt="2026-01-02T03:04:06Z"))
    assert (s.state, s.reason, s.exit_code, s.restarts, s.image_id) == ("waiting", "CrashLoop", 3, 4, "sha256:beef")
    assert s.to_json()["finishedAt"] == "2026-01-02T03:04:06Z"
    assert s.to_json()["lastState"] == {"state": "terminated", "reason": "Error", "exitCode": 3}


@pytest.mark.parametrize("state, reason, code", [
    ({"Status": "exited", "Running": False, "ExitCode": 3}, "Error", 3),
    ({"Status": "exited", "Running": False, "ExitCode": 0}, "Completed", 0),
    ({"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True}, "OOMKilled", 137),
])
def test_an_exited_container_is_terminated_with_the_reason_kubernetes_users_know(state, reason, code):
    s = status_of(inspected(**state))
    assert (s.state, s.reason, s.exit_code) == ("terminated", reason, code)


def test_a_running_container_has_no_last_exit_code_to_make_up():
    s = status_of(inspected())
    assert (s.state, s.reason, s.exit_code, s.finished) == ("running", "", None, None)


def test_docker_times_and_its_zero_time():
    assert parse_time("2026-01-02T03:04:05.5Z") == parse_time("2026-01-02T03:04:05Z") + 0.5
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("yesterday") is None


def test_restarts_count_the_pods_own_containers_not_its_infra():
    p = pod("web", states={"a": "running", "b": "running"})
    found = {c.id: status_of({**inspected(), "Id": c.id, "RestartCount": 2}) for c in p.containers}
    assert restarts(p, found) == 4
    assert restarts(p, {}) is None


def test_ages_read_as_kubectl_prints_them():
    assert [format_age(s) for s in (5, 61, 7300, 3 * 86400, None)] == ["5s", "1m", "2h", "3d", "?"]


def test_the_exit_code_of_a_restarting_container_is_read_from_its_status():
    pods = group_pods("m1", [{"Id": "c1", "Names": ["/x"], "State": "restarting", "Status": "Restarting (3) 1 second ago",
                              "Image": "busybox", "Labels": {"io.cluster-pilot.pod": "p", "io.cluster-pilot.container": "app"}}])
    assert pods[0].containers[0].exit_code == 3


# --- finding the container, and what runs on the minion ------------------------------------------------------
def test_a_one_container_pod_needs_no_container_name():
    assert locate(seen(pod("web")), "web").id == "web-app"


@pytest.mark.parametrize("name, container, message", [
    ("nope", None, "pod 'nope' not found on any minion (not answering: m2)"),
    ("two", None, "pod 'two' has containers a, b: choose one with -c"),
    ("two", "c", "pod 'two' has no container 'c' (it has: a, b)"),
])
def test_every_way_to_miss_a_container_is_one_line_naming_the_choices(name, container, message):
    with pytest.raises(UserError) as err:
        locate(seen(pod("two", states={"a": "running", "b": "running"}), down=("m2",)), name, container)
    assert str(err.value) == message


def test_log_options_are_checked_before_anything_runs():
    with pytest.raises(UserError, match="--since 'soon'"):
        check_log_options(LogOptions(since="soon"))
    with pytest.raises(UserError, match="--tail -1"):
        check_log_options(LogOptions(tail=-1))
    assert check_log_options(LogOptions(since="10m", tail=5)).since == "10m"


def test_log_commands_quote_what_they_pass():
    text = logs_remote("abc", LogOptions(tail=5, since="2026-01-02T03:04:05Z", timestamps=True))
    assert shlex.split(text) == ["exec", "docker", "logs", "--tail", "5", "--since", "2026-01-02T03:04:05Z",
                                 "--timestamps", "abc"]
    assert shlex.split(exec_remote("abc", ["sh", "-c", "echo $HOME; exit 3"], False, False)) == [
        "exec", "docker", "exec", "abc", "sh", "-c", "echo $HOME; exit 3"]


def test_previous_reads_the_last_run_of_a_container_that_is_down_and_everything_before_the_current_one():
    text = logs_remote("abc", LogOptions(previous=True))
    assert 'w="--since $3 --until $4"' in text and 'w="--until $3"' in text and "has not restarted" in text


def test_follow_stops_on_the_minion_when_the_client_goes():
    assert "cat <&3" in logs_remote("abc", LogOptions(follow=True))


# --- events ----------------------------------------------------------------------------------------------------
def test_a_container_entering_its_restart_back_off_is_one_event():
    before = seen(pod("crash"))
    after = seen(pod("crash", states={"app": "restarting"}, exit_code=3))
    events = restart_events(before, after)
    assert [(e.reason, e.name, e.message) for e in events] == [
        ("Restarted", "crash", "container app exited with code 3; dockerd restarts it")]
    assert restart_events(after, after) == []


def test_minions_losing_and_regaining_readiness_are_events():
    up = seen(pod("a", node="m1"))
    down = Observation({"m1": HostView("m1", False, error="no route")})
    assert [e.reason for e in minion_events(up, down)] == ["MinionNotReady"]
    assert [e.reason for e in minion_events(down, up)] == ["MinionReady"]
    assert minion_events(None, down) == []


def test_a_scheduling_failure_is_recorded_when_its_explanation_changes_not_every_pass():
    why = Unschedulable("big", "rc", ("2 insufficient cpu",), "0/2 minions are available for big: 2 insufficient cpu")
    sched = Schedule((), (), (why,))
    assert [e.message for e in scheduling_failures(sched, {})] == [why.message]
    assert scheduling_failures(sched, {"big": why.message}) == []


def test_a_pass_that_ran_names_what_it_did_and_why():
    from cluster_pilot.apply.pipeline import Outcome
    from cluster_pilot.master.events import plan_events
    from cluster_pilot.model import Container, Meta, Pod, PodSpec
    from cluster_pilot.plan.planner import Create, Plan, Remove
    from cluster_pilot.scheduler import Placement

    def model(name: str) -> Pod:
        return Pod(Meta(name), PodSpec((Container("app", "busybox"),)))

    broken = pod("web-1", states={"app": "exited"}, exit_code=3)
    creates = (Create("m1", model("web-1"), "web", "h"), Create("m2", model("web-2"), "web", "h2"))
    removes = (Remove("m1", "web-1", "h", (), "replaced"), Remove("m1", "old", "h", (), "pruned"),
               Remove("m2", "gone", "h", (), "evicted"))
    schedule = Schedule(tuple(Placement(c.pod, c.node, "web") for c in creates))
    outcome = Outcome(seen(broken), schedule, Plan(creates, removes, proxy="f" * 64, proxy_nodes=("m1",)))
    got = [(e.reason, e.name, e.message) for e in plan_events(outcome)]
    assert got == [
        ("Replaced", "web-1", "broken: app exited (exit code 3); recreated on m1"),
        ("Scheduled", "web-2", "assigned to m2: fewest pods of web (0 other there), then least requested of 1 "
                               "ready minions; 1 pods there now"),
        ("Created", "web-2", "started app (busybox)"),
        ("Killed", "old", "removed from m1: pruned"),
        ("Evicted", "gone", "removed from m2: evicted"),
        ("ProxyReconfigured", "m1", "proxy document ffffffffffff on m1"),
    ]


def test_the_event_log_keeps_the_newest_and_filters_by_object(tmp_path: Path):
    log = EventLog.open(tmp_path / "events.db", limit=5)
    log.record(Event("Pod", f"p{i % 2}", "Created", f"n{i}") for i in range(8))
    everything = log.list()
    assert [e.message for e in everything] == ["n3", "n4", "n5", "n6", "n7"]
    assert [e.message for e in log.list("Pod", "p1")] == ["n3", "n5", "n7"]
    assert [e.message for e in log.list(after=everything[-2].id)] == ["n7"]


# --- the dashboard's sign-in -------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    text: str
    headers: dict[str, str]

    def json(self):
        return json.loads(self.text)


class Ui:
    """The real app served on loopback (``test_kubecfg.serve``); requests never follow redirects."""

    def __init__(self, master) -> None:
        self.master, self.reconciler = master, master.reconciler
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None) -> Answer:
        parts = urllib.parse.urlsplit(self.master.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if path.startswith("/api/"):  # the API's reads need the token too; the dashboard has its cookie
            from tests.unit.test_kubecfg import TOKEN

            headers["Authorization"] = f"Bearer {TOKEN}"
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        answer = Answer(r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()})
        conn.close()
        return answer


@pytest.fixture
def ui(tmp_path: Path):
    from tests.unit.test_kubecfg import serve

    master = serve(tmp_path, insecure_loopback=False)
    yield Ui(master)
    master.stop()


def test_without_the_token_the_dashboard_is_a_login_form(ui):
    page = ui.request("GET", "/ui/")
    assert page.status == 200 and 'form id="login"' in page.text and "minion-a.test.invalid" not in page.text
    assert ui.request("GET", "/ui/board").status == 401
    assert ui.request("GET", "/ui/pods/x/log").status == 401


def test_signing_in_keeps_the_token_in_a_strict_http_only_cookie(ui):
    from tests.unit.test_kubecfg import TOKEN

    wrong = ui.request("POST", "/ui/login", "token=nope")
    assert wrong.status == 401 and "not the master" in wrong.text
    answer = ui.request("POST", "/ui/login", urllib.parse.urlencode({"token": TOKEN}))
    cookie = answer.headers["set-cookie"]
    assert answer.status == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    ui.cookie = cookie.split(";")[0]
    page = ui.request("GET", "/ui/")
    assert "minion-a.test.invalid" in page.text and 'id="board"' in page.text


def test_events_are_served_filtered_by_object(ui):
    ui.reconciler.events.record([Event("Pod", "web", "Scheduled", "assigned to m1", "m1"),
                                 Event("Pod", "db", "Killed", "removed from m1: pruned", "m1")])
    answer = ui.request("GET", "/api/v1beta1/events?object=pod/web")
    assert answer.status == 200
    assert [(e["reason"], e["name"]) for e in answer.json()["items"]] == [("Scheduled", "web")]
    assert len(ui.request("GET", "/api/v1beta1/events").json()["items"]) == 2


def test_a_log_of_an_unknown_pod_is_a_status_not_a_stream(ui):
    answer = ui.request("GET", "/api/v1beta1/pods/nope/log")
    assert answer.status == 404 and answer.json()["message"] == "pod 'nope' not found on any minion"
