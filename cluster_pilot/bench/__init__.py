"""Benchmarks: each module measures one stage and returns its figures as a value; ``cli/bench.py`` parses the
options and prints. They report figures (ratios and rates), never pass/fail on time.

A benchmark takes what the command line resolved (nodes, the state directory, recorded services) as
arguments, so it sits below the CLI and can be driven from a test or another tool alike.
"""

from __future__ import annotations

from cluster_pilot.errors import UserError


class BenchFailed(UserError):
    """A measurement that could not be made (a tool missing, a deploy failed, output unreadable); shown as one
    line, like every error of the command line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
