"""The object records the minions keep: merging copies, ownership, tombstones, and what a plan makes of them."""

from __future__ import annotations

import json

from cluster_pilot.apply.pipeline import Driver, Options, Request, look_all

from cluster_pilot.host.records import fleet_records
from cluster_pilot.errors import UserError
from cluster_pilot.host.observed import HostView, Observation, read_pods
from cluster_pilot.host.records import (TOMBSTONE_AGE_MS, ObjectChange, Owner, Records, changes, collect,
                                        decode, merge, settle, update)
from cluster_pilot.model import (Container, Meta, Node, Pod, PodSpec, PodTemplate, Port, ReplicationController,
                                 Resources, Service, ServicePort)
from tests.unit.test_pipeline_core import running

NODES = [Node(f"m{i}", f"10.0.0.{i}", Resources(2000, 4 << 30, 40), {"zone": "a"}) for i in (1, 2)]
CLI = Owner("default")
MASTER = Owner("master", "http://127.0.0.1:8080")


def web(replicas=2):
    spec = PodSpec((Container("web", "busybox", ("httpd", "-f"), ports=(Port(80),), cpu_millis=100),))
    return ReplicationController(Meta("web", {"app": "web"}), replicas, {"app": "web"},
                                 PodTemplate({"app": "web"}, spec))


def svc(name="frontend", port=8000):
    return Service(Meta(name, {}), (ServicePort(port, 80),), {"app": "web"})


def lonely():
    return Pod(Meta("lonely", {"app": "lonely"}), PodSpec((Container("c", "busybox", ("sleep", "9")),)))


def hosts(text: str | None, seen: Observation | None = None) -> Observation:
    base = seen.hosts if seen else {n.name: HostView(n.name, True) for n in NODES}
    return Observation({n: HostView(v.node, True, v.pods, proxy=v.proxy, records=text) for n, v in base.items()})


def test_newest_version_wins_across_copies_and_a_tombstone_outlives_an_old_copy():
    first = update(Records(), [svc(), web()], (), CLI, version=10).records
    later = update(first, [], [("Service", "frontend")], CLI, version=20).records
    merged = merge([decode(first.encode())[0], decode(later.encode())[0]])  # a minion that was down: older copy
    assert merged.get("Service", "frontend") is None
    assert merged.entries[("Service", "frontend")].version == 20
    assert [e.name for e in merged.live()] == ["web"]


def test_two_runners_applying_the_same_object_write_one_copy():
    a = update(Records(), [svc()], (), CLI, version=5).records
    b = update(decode(a.encode())[0], [svc()], (), CLI, version=99).records
    assert b.encode() == a.encode()


def test_an_apply_keeps_what_others_applied_and_prune_stays_in_its_own_set():
    theirs = update(Records(), [svc("other")], (), Owner("team-b"), version=1).records
    mine = update(theirs, [svc(), web()], (), CLI, version=2).records
    pruned = update(mine, [web()], (), CLI, prune=True, version=3).records
    assert sorted(e.name for e in pruned.live()) == ["other", "web"]


def test_another_owners_object_is_refused_unless_adopted():
    held = update(Records(), [svc()], (), MASTER, version=1).records
    refused = update(held, [svc(port=9000)], (), CLI, version=2)
    assert refused.refused == ("service 'frontend' is managed by the master at http://127.0.0.1:8080; "
                               "use --server (or --force-adopt)",)
    assert refused.records.get("Service", "frontend").owner == MASTER
    assert update(held, [], [("Service", "frontend")], CLI).refused  # deleting it is refused too
    adopted = update(held, [svc(port=9000)], (), CLI, adopt=True, version=2).records
    assert adopted.get("Service", "frontend").owner == CLI
    back = update(adopted, [svc()], (), Owner("master", "http://other:1"), version=3)
    assert back.refused and "apply set 'default'" in back.refused[0]


def test_damaged_copies_are_reported_never_fatal():
    good = update(Records(), [svc()], (), CLI, version=1).records
    doc = json.loads(good.encode())
    doc["objects"].append({"kind": "Service", "name": "x", "version": "NaN?", "body": {}})
    records, problems = decode(json.dumps(doc))
    assert [e.name for e in records.live()] == ["frontend"] and len(problems) == 1
    assert decode("{not json")[1] and not decode("{not json")[0].entries


def test_a_fresh_runner_keeps_recorded_services_on_the_proxies():
    """The bug: a runner with no state planned every proxy without the fleet's services."""
    first = look_all(Request.of([web(), svc()]), NODES, None, seen=hosts(None))
    seen = running(first.schedule.placements)
    # the proxies as the first run left them, and its records on every minion
    seen = Observation({n: HostView(v.node, True, v.pods, proxy=_hash(first.plan.proxy), records=first.plan.records)
                        for n, v in seen.hosts.items()})
    again = look_all(Request.of([web(), svc()]), NODES, None, seen=seen)
    assert again.plan.empty
    other = look_all(Request.of([lonely()]), NODES, None, seen=seen)
    actions = {c.action for c in other.plan.changes()}
    assert "proxy" not in actions and "create" in actions and "record" in actions
    assert [s.meta.name for s in other.services] == ["frontend"]


def test_a_cli_apply_of_a_master_object_is_refused_before_anything_happens():
    held = update(Records(), [svc()], (), MASTER, version=1).records
    try:
        look_all(Request.of([svc()]), NODES, None, seen=hosts(held.encode()))
    except UserError as exc:
        assert "managed by the master at http://127.0.0.1:8080; use --server" in str(exc)
    else:
        raise AssertionError("not refused")
    found = look_all(Request.of([svc()]), NODES, None,
                     Options(applyset="master", driver=Driver(master="http://x", skip_foreign=True)),
                     seen=hosts(update(Records(), [svc()], (), CLI).records.encode()))
    assert found.refused and found.records.get("Service", "frontend").owner == CLI


def test_the_store_seeds_a_fleet_without_records_only():
    known = update(Records(), [svc("old")], (), CLI).records
    assert [e.name for e in fleet_records(hosts(None), known)[0].live()] == ["old"]
    assert fleet_records(hosts(Records().encode()), known)[0].live() == []


def test_damaged_labels_are_a_warning_naming_minion_and_container():
    containers = [{"Id": "abc", "Names": ["/weird"], "State": "running", "Image": "busybox",
                   "Labels": {"io.cluster-pilot.pod": "weird", "io.cluster-pilot.container": "POD",
                              "io.cluster-pilot.ports": "[[\"c\", \"eighty\", \"TCP\", 1, null]]"}},
                  {"Id": "def", "Names": ["/odd"], "State": "running", "Image": "busybox",
                   "Labels": {"io.cluster-pilot.pod": "odd", "io.cluster-pilot.pod-labels": "[1, 2]"}}]
    pods, warnings = read_pods("m1", containers)
    assert pods == ()
    assert len(warnings) == 2 and warnings[0].startswith("m1: container odd:") and "m1: container weird:" in warnings[1]


def _copies(**copies: Records | None) -> dict[str, Records | None]:
    """Each minion's copy as it reads back from its document (None: did not answer)."""
    return {n: None if c is None else decode(c.encode())[0] for n, c in copies.items()}


def test_a_tombstone_every_minion_holds_is_collected_and_no_old_copy_brings_it_back():
    old = update(Records(), [svc(), web()], (), CLI, version=10).records
    gone = update(old, [], [("Service", "frontend")], CLI, version=20).records
    doc, stale = settle(gone, _copies(m1=old, m2=old, m3=None), now_ms=21, busy=True)
    assert stale == ("m1", "m2") and decode(doc)[0].entries[("Service", "frontend")].body is None  # m3 is down

    back = merge([gone, gone, old])  # m3 answers again, with the old copy
    doc, stale = settle(back, _copies(m1=gone, m2=gone, m3=old), now_ms=22, busy=True)
    assert stale == ("m3",) and "frontend" in doc  # m3 does not hold it yet: kept

    doc, stale = settle(gone, _copies(m1=gone, m2=gone, m3=gone), now_ms=23, busy=True)
    collected = decode(doc)[0]
    assert stale == ("m1", "m2", "m3") and ("Service", "frontend") not in collected.entries
    assert collected.horizon == 20 and [e.name for e in collected.live()] == ["web"]
    # m2 was down for that write (keeps the tombstone); an old copy is restored on m3: neither brings it back
    merged = merge([collected, gone, old])
    assert ("Service", "frontend") not in merged.entries and [e.name for e in merged.live()] == ["web"]
    assert settle(merged, _copies(m1=collected, m2=gone, m3=old), now_ms=24, busy=False)[1] == ("m2", "m3")


def test_collecting_tombstones_never_widens_a_run_beyond_the_minions_it_reaches():
    gone = update(update(Records(), [web(), svc()], (), CLI, version=10).records, [], [("Service", "frontend")], CLI,
                  version=20).records
    first = look_all(Request.of([web()]), NODES, None, seen=hosts(gone.encode()))
    seen = hosts(gone.encode(), running(first.schedule.placements))
    seen = Observation({n: HostView(v.node, True, v.pods, proxy=_hash(first.plan.proxy), records=v.records)
                        for n, v in seen.hosts.items()})
    assert look_all(Request.of([web()]), NODES, None, seen=seen).plan.empty  # every copy holds the tombstone: kept
    healed = look_all(Request.of([web()], evict=[first.schedule.placements[0].pod.meta.name]), NODES, None, seen=seen)
    assert healed.plan.creates and set(healed.plan.nodes) == {first.schedule.placements[0].node}
    assert not healed.plan.records_nodes  # one minion's heal rewrites no copy to collect a tombstone
    everywhere = look_all(Request.of([web(), svc("other")]), NODES, None, seen=seen)
    assert set(everywhere.plan.records_nodes) == {"m1", "m2"}
    assert ("Service", "frontend") not in decode(everywhere.plan.records)[0].entries  # collected on the way


def test_an_old_tombstone_is_collected_even_with_a_minion_down():
    gone = update(update(Records(), [svc()], (), CLI, version=10).records, [], [("Service", "frontend")], CLI,
                  version=20).records
    down = _copies(m1=gone, m2=None)
    assert collect(gone, down.values(), now_ms=20 + TOMBSTONE_AGE_MS - 1).entries  # not yet
    aged = collect(gone, down.values(), now_ms=20 + TOMBSTONE_AGE_MS)
    assert not aged.entries and aged.horizon == 20


def test_collecting_alone_never_makes_a_plan():
    gone = update(update(Records(), [svc()], (), CLI, version=10).records, [], [("Service", "frontend")], CLI,
                  version=20).records
    everywhere = _copies(m1=gone, m2=gone)
    assert settle(gone, everywhere, now_ms=30, busy=False) == (gone.encode(), ())
    doc, stale = settle(gone, everywhere, now_ms=30, busy=True)
    assert stale == ("m1", "m2") and decode(doc)[0] == Records({}, 20)


def test_after_a_collection_new_writes_outrank_the_horizon_whatever_the_clock():
    collected = Records({}, 500)
    again = update(collected, [svc()], (), CLI, version=3).records  # a runner whose clock is behind
    assert again.get("Service", "frontend").version > 500 and again.horizon == 500
    assert merge([again, collected]).get("Service", "frontend") is not None


def test_a_plan_lists_the_objects_asked_differently():
    before = update(Records(), [svc(), web(), lonely()], (), CLI, version=1).records
    mid = update(before, [svc(port=9000), web(), svc("new")], [("Service", "never-was"), ("Pod", "lonely")],
                 CLI, version=2).records
    assert ObjectChange("update", "Service", "frontend") in changes(before, mid)
    after = update(mid, [], [("Service", "frontend")], CLI, version=3).records
    assert changes(before, after) == [ObjectChange("delete", "Pod", "lonely"),
                                      ObjectChange("delete", "Service", "frontend"),
                                      ObjectChange("create", "Service", "new")]
    assert [c.describe() for c in changes(Records(), before, ("Service",))] == ["+ service frontend"]


def _hash(document: str) -> str:
    from cluster_pilot.plan.proxy import document_hash

    return document_hash(document)


def test_a_records_document_the_probe_could_not_read_is_an_empty_copy_with_a_problem():
    from cluster_pilot.host.records import Records as R, decode as d

    records, problems = d("\0Is a directory")
    assert records == R() and problems == ["unreadable object records (Is a directory)"]
