"""The CI recipe of ``docs/ci.md``, read from the document itself: the one source of the commands both the
document shows and the end-to-end test runs. Pure: no container, no host.

Each job becomes one bash script that runs its steps the way its CI system does: GitLab runs ``before_script``
and ``script`` lines in one shell that stops at the first failing line; GitHub Actions runs each ``run`` step in
its own ``bash -eo pipefail`` with the step's ``env``. ``uses:`` steps (checkout, setup-python) are what the
runner container already is. Secrets are read from files at run time, so their values never sit in a script.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import yaml

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"
SECRETS_DIR = "/run/ci-secrets"  # one file per secret, named after it
_SECRET = re.compile(r"\$\{\{\s*secrets\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class Step:
    run: str
    env: Mapping[str, str]


@dataclass(frozen=True)
class Job:
    system: str  # "github" or "gitlab"
    name: str
    steps: tuple[Step, ...]
    when: str  # the job's condition, as written

    def commands(self) -> list[str]:
        """Its ``cluster-pilot`` command lines, in order."""
        return [line.strip() for s in self.steps for line in s.run.splitlines()
                if line.strip().startswith("cluster-pilot ")]

    def script(self) -> str:
        """One bash script running the job's steps as its CI system would; exit status: the job's."""
        if self.system == "gitlab":
            lines = "\n".join(s.run for s in self.steps)
            return f"set -eo pipefail\n{lines}\n"
        out = ["set -e"]
        for s in self.steps:
            env = " ".join(f"{k}={_github_value(v)}" for k, v in s.env.items())
            out.append(f"{env} bash --noprofile --norc -eo pipefail -c {shlex.quote(s.run)}".strip())
        return "\n".join(out) + "\n"


def _github_value(value: str) -> str:
    """``${{ secrets.X }}`` read from X's file; anything else as written."""
    parts = _SECRET.split(str(value))
    return "".join(shlex.quote(p) if i % 2 == 0 else f'"$(cat {SECRETS_DIR}/{p})"' for i, p in enumerate(parts)
                   if p or i % 2)


def yaml_block(text: str, heading: str) -> dict:
    """The first ```yaml block under ``## heading``."""
    section = text.split(f"\n## {heading}\n", 1)[1]
    body = section.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    return yaml.safe_load(body)


def github_jobs(text: str) -> dict[str, Job]:
    doc = yaml_block(text, "GitHub Actions")
    return {name: Job("github", name, tuple(Step(s["run"], s.get("env", {})) for s in job["steps"] if "run" in s),
                      job["if"])
            for name, job in doc["jobs"].items()}


def gitlab_jobs(text: str) -> dict[str, Job]:
    doc = yaml_block(text, "GitLab CI")
    before = doc.get("default", {}).get("before_script", [])
    return {name: Job("gitlab", name, tuple(Step(line, {}) for line in [*before, *job["script"]]),
                      " ".join(r["if"] for r in job.get("rules", [])))
            for name, job in doc.items() if isinstance(job, dict) and "script" in job}


def recipe(path: Path = DOC) -> dict[str, dict[str, Job]]:
    text = path.read_text()
    return {"github": github_jobs(text), "gitlab": gitlab_jobs(text)}


def gitlab_file_variables(names: Iterable[str]) -> dict[str, str]:
    """GitLab's File-type variables: each names the file that holds its value."""
    return {name: f"{SECRETS_DIR}/{name}" for name in names}
