"""Policy errors: each message names the key and what is wrong with it."""

from __future__ import annotations

from pydantic import ValidationError


class PolicyError(ValueError):
    """A policy or preset is invalid; the message names the key and the problem."""


class StatutoryMinimumError(PolicyError):
    """An override would shorten a statutory minimum and was not forced with who and why."""


class StoredPolicyError(PolicyError):
    """A shop's stored policy that the engine no longer accepts (`shop_policy`'s failure rule)."""


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{key or prefix or 'policy'}: {message}")
    return "; ".join(problems)
