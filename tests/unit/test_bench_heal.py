"""The heal bench's readings of a master's log and trace (pure parts)."""

from __future__ import annotations

from cluster_pilot.bench.heal import heal_split, percentile, resync_passes


def test_resync_passes_are_read_from_the_log_without_the_first_one(tmp_path):
    log = tmp_path / "master.log"
    log.write_text("\n".join([
        "2026-11-29 16:00:00,000 INFO cluster_pilot.master: resync: 30 minions observed whole in a pass of 2.500 s",
        "2026-11-29 16:00:10,000 INFO cluster_pilot.master: pass ran Ansible on minion-1 (create a@minion-1) in 1 s",
        "2026-11-29 16:00:30,000 INFO cluster_pilot.master: resync: 30 minions observed whole in a pass of 0.120 s",
        "2026-11-29 16:01:00,000 INFO cluster_pilot.master: resync: 29 minions observed whole in a pass of 0.095 s",
    ]) + "\n")
    assert resync_passes(log) == (0.12, 0.095)


def test_a_heal_is_split_from_its_pass_marks():
    trace = {"event": 100.0, "planned": 100.25, "marks": [
        (100.9, "playbook_on_start::", ""), (101.0, "runner_on_start::cp_pods", "m1"),
        (101.8, "runner_on_ok::cp_pods", "m1"), (102.0, "playbook_on_stats::", "")]}
    split = dict(heal_split(trace, docker=0.3, running=102.5))
    assert split["event to plan"] == 0.25
    assert round(split["plan to ansible-playbook start"], 2) == 0.65
    assert round(split["playbook end to Running in the API"], 2) == 0.5
    assert percentile([1.0, 2.0, 3.0, 10.0], 0.95) == 10.0
