"""docs/ci.md's two pipelines say the same thing, and the scripts the end-to-end test makes of them run it."""

from __future__ import annotations

import re

from tests.ci_recipe import DOC, SECRETS_DIR, Job, Step, recipe


def test_both_systems_run_the_same_commands_and_the_table_names_them():
    jobs = recipe()
    for name in ("check", "deploy"):
        assert jobs["github"][name].commands() == jobs["gitlab"][name].commands()
    table = re.findall(r"^\| [^|]+ \| `(cluster-pilot [^`]+)`", DOC.read_text(), re.M)
    assert table == [c.split(" || ")[0] for name in ("check", "deploy") for c in jobs["gitlab"][name].commands()]
    deploy = jobs["gitlab"]["deploy"].commands()
    assert deploy == ["cluster-pilot apply -f deploy/ -i inventory.yml --prune --applyset web --lock-timeout 600"]


def test_checks_run_on_pull_requests_and_the_deploy_on_main_only():
    jobs = recipe()
    assert "pull_request" in jobs["github"]["check"].when and "refs/heads/main" in jobs["github"]["deploy"].when
    assert "merge_request_event" in jobs["gitlab"]["check"].when
    assert "CI_DEFAULT_BRANCH" in jobs["gitlab"]["deploy"].when
    assert not any("FLEET_SSH_KEY" in s.run + str(s.env) for j in jobs.values() for s in j["check"].steps)


def test_a_github_step_reads_its_secret_from_a_file_never_from_the_script():
    job = Job("github", "deploy", (Step('echo "$K"', {"K": "${{ secrets.FLEET_SSH_KEY }}", "N": "x"}),), "")
    assert job.script() == (f"set -e\nK=\"$(cat {SECRETS_DIR}/FLEET_SSH_KEY)\" N=x "
                            "bash --noprofile --norc -eo pipefail -c 'echo \"$K\"'\n")


def test_a_gitlab_job_stops_at_its_first_failing_line():
    import subprocess

    job = Job("gitlab", "check", (Step("true", {}), Step("exit 3", {}), Step("echo never", {})), "")
    proc = subprocess.run(["bash", "-c", job.script()], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3 and "never" not in proc.stdout
