"""Errors a person can act on.

Anything raised as a ``UserError`` reaches the terminal as one line and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unmet precondition; the message is the whole story."""

    exit_code = 1


class ValidationFailed(UserError):
    """One or more manifest problems; ``problems`` holds them all, so a person fixes them in one pass."""

    def __init__(self, problems: list) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
