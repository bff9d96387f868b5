"""Pod environment values never reach an error text: dockerd's refusal quotes ``NAME=VALUE``."""

from __future__ import annotations

from cluster_pilot.apply.masking import mask


def test_dockerds_refusal_quoting_the_env_is_masked():
    refusal = ("POST /containers/create: 400 invalid environment variable: DB_PASSWORD=hunter2 x "
               "SHORT=1 (was hunter2)")
    out = mask(refusal, [("DB_PASSWORD", "hunter2"), ("SHORT", "1")])
    assert "hunter2" not in out
    assert "DB_PASSWORD=***" in out and "SHORT=***" in out
    assert "400" in out  # a short value is masked only after its name


def test_a_value_inside_another_is_masked_whole_and_empty_values_are_left():
    out = mask("A=abcdef B=abcd C=", [("A", "abcdef"), ("B", "abcd"), ("C", "")])
    assert out == "A=*** B=*** C="


def test_the_runs_messages_carry_no_env_value(monkeypatch, tmp_path):
    """run_playbook masks every host message with the plan's env (a run whose ansible-playbook fails)."""
    import types

    from cluster_pilot.apply import runner

    class FakeRunner:
        status = "failed"
        stdout = None

    def run_async(**kwargs):
        kwargs["event_handler"]({"event": "runner_on_failed", "event_data": {
            "host": "m1", "res": {"msg": "dockerd: invalid mount; Env TOKEN=s3cret-value"}}})
        kwargs["finished_callback"](None)
        thread = types.SimpleNamespace(is_alive=lambda: False)
        return thread, FakeRunner()

    monkeypatch.setitem(__import__("sys").modules, "ansible_runner", types.SimpleNamespace(run_async=run_async))
    result = runner.run_playbook("apply.yml", tmp_path / "inv", {}, ["m1"], tmp_path, {"m1": 1},
                                 env=[("TOKEN", "s3cret-value")])
    text = " ".join(result.hosts["m1"].messages)
    assert "s3cret-value" not in text and "TOKEN=***" in text
