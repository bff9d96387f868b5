"""docs/ci.md's pipelines, run as written: each job in a fresh container with only the project installed (by
the job's own ``pip install cluster-pilot``), against the sandbox. The commands come from the document itself
(``tests/ci_recipe.py``); the secrets reach the jobs the way each CI system hands them over."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ci_recipe import Job, gitlab_file_variables, recipe
from tests.e2e.ci_runner import JobRun, Runner, ensure_runner_image, project_wheel
from tests.e2e.conftest import cli, pods_of, ssh, wait_for, write_manifest
from tests.e2e.test_services import get, minions
from tests.e2e.test_truth import LOCK_DIR, RECORDS, answers_everywhere, app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PORT = 8095
SECRET_NAMES = ("FLEET_SSH_KEY", "FLEET_KNOWN_HOSTS")


@pytest.fixture(scope="module")
def runner(sandbox, tmp_path_factory) -> Runner:
    client = sandbox.client()
    tag = ensure_runner_image(client)
    wheels = tmp_path_factory.mktemp("ci-wheels")
    project_wheel(wheels)
    secrets = tmp_path_factory.mktemp("ci-secrets")
    shutil.copy(sandbox.key, secrets / "FLEET_SSH_KEY")
    scan = subprocess.run(["ssh-keyscan", "-T", "5", *(m.address for m in minions(sandbox))], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert scan.stdout.strip(), scan.stderr
    (secrets / "FLEET_KNOWN_HOSTS").write_text(scan.stdout)
    return Runner(client, tag, sandbox.network_name, wheels, secrets)


def checkout(sandbox, where: Path, *manifests: tuple[str, dict]) -> Path:
    """A repository as docs/ci.md lays it out: ``deploy/`` and an inventory naming the key as Ansible does."""
    where.mkdir()
    (where / "deploy").mkdir()
    for name, doc in manifests:
        write_manifest(where / "deploy" / name, doc)
    theirs = yaml.safe_load(sandbox.inventory.read_text())["all"]["children"]["minions"]["hosts"]
    keep = ("ansible_host", "ansible_user", "ansible_python_interpreter", "cp_capacity", "cp_labels")
    hosts = {name: {k: v for k, v in h.items() if k in keep} for name, h in theirs.items()}
    (where / "inventory.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_ssh_private_key_file": "~/.ssh/fleet"}, "children": {"minions": {"hosts": hosts}}}}))
    return where


def answers_nowhere(sandbox, port: int) -> bool:
    for m in minions(sandbox):
        try:
            get(m.address, port, timeout=3)
            return False
        except OSError:
            pass
    return True


def env_for(job: Job) -> dict[str, str]:
    return gitlab_file_variables(SECRET_NAMES) if job.system == "gitlab" else {}


def run_jobs(runner: Runner, jobs: list[tuple[Job, Path]], network: str | None = None) -> list[JobRun]:
    """Jobs started together (one pipeline's, or several pipelines at once), each in a fresh container with its
    repository; on ``network="none"`` a job reaches no host at all."""
    boxes = [(job, runner.start(job.script(), repo, env_for(job), network)) for job, repo in jobs]
    return [runner.finish(f"{job.system}-{job.name}", box) for job, box in boxes]


def test_a_pull_request_is_checked_offline(sandbox, runner, tmp_path):
    """Four pull requests' checks at once: good files on both systems, a bad field, pods that fit nowhere."""
    rc, svc = app("ci-web", PORT)
    big = json.loads(json.dumps(rc))
    big["desiredState"]["replicas"] = 200  # 40 pods per minion, three minions
    good = checkout(sandbox, tmp_path / "good", ("rc.json", rc), ("svc.json", svc))
    broken = checkout(sandbox, tmp_path / "broken", ("rc.json", {**rc, "desiredState": {"replicas": "two"}}))
    jobs = recipe()
    runs = run_jobs(runner, [(jobs["github"]["check"], good), (jobs["gitlab"]["check"], good),
                             (jobs["gitlab"]["check"], broken),
                             (jobs["github"]["check"], checkout(sandbox, tmp_path / "big", ("rc.json", big)))],
                    network="none")
    for run in runs[:2]:
        assert run.code == 0, run.output
        assert "+ ci-web-" in run.output and "+ service ci-web" in run.output, run.output
        assert "object records" not in run.output and "service proxy" not in run.output, run.output

    assert runs[2].code != 0
    assert "::error file=deploy/rc.json" in runs[2].output, runs[2].output
    assert "to create" not in runs[2].output, runs[2].output  # validate's exit code stopped the job: no plan

    assert runs[3].code != 0 and "fit on no minion" in runs[3].output, runs[3].output


def test_the_main_branch_deploys_with_the_secret_key_under_the_lock(sandbox_home, sandbox, runner, tmp_path):
    rc, svc = app("ci-web", PORT)
    jobs = recipe()
    repo = checkout(sandbox, tmp_path / "repo", ("rc.json", rc), ("svc.json", svc))
    try:
        runs = run_jobs(runner, [(jobs["github"]["deploy"], repo), (jobs["gitlab"]["deploy"], repo)])
        for run in runs:
            assert run.code == 0, run.output
        assert any("waiting for the fleet lock" in r.output or "no changes" in r.output for r in runs), runs
        waited = [r.output for r in runs if "waiting for the fleet lock" in r.output]
        assert all("held by root on runner " in out for out in waited), waited  # one hostname, never mistaken
        key = (runner.secrets / "FLEET_SSH_KEY").read_text().strip().splitlines()[1]
        assert not any(key in r.output for r in runs), "the secret key reached a job's log"
        wait_for(lambda: answers_everywhere(sandbox, PORT), 30, "ci-web to answer on every minion")
        assert len(pods_of(sandbox, "ci-web")) == 2
        lock_host = minions(sandbox)[0]
        assert ssh(sandbox, lock_host.address, f"test -e {LOCK_DIR}").returncode != 0  # released

        (repo / "deploy" / "svc.json").unlink()
        (run,) = run_jobs(runner, [(jobs["gitlab"]["deploy"], repo)])
        assert run.code == 0, run.output
        records = json.loads(ssh(sandbox, lock_host.address, f"cat {RECORDS}").stdout)["objects"]
        bodies = {(o["kind"], o["name"]): o["body"] for o in records}
        assert bodies[("Service", "ci-web")] is None and bodies[("ReplicationController", "ci-web")], records
        wait_for(lambda: answers_nowhere(sandbox, PORT), 30, "the pruned service to stop answering")
        assert len(pods_of(sandbox, "ci-web")) == 2
    finally:
        write_manifest(tmp_path / "svc.json", svc)
        cli("delete", "-f", str(repo / "deploy" / "rc.json"), "-f", str(tmp_path / "svc.json"), "--applyset", "web",
            home=sandbox_home, check=False)
