"""The other stages' functions the admin calls, looked up when called.

The admin is built at the same time as the stages it shows; a stage that is not in the build yet
makes its action answer "not available" (503 in the API) instead of breaking every page.
"""

from __future__ import annotations

import importlib
from typing import Any


class Unavailable(Exception):
    """A function another stage provides is not part of this build."""


def provided(module: str, name: str) -> Any:
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the module itself missing counts; a broken import inside it must stay loud.
        if exc.name is not None and module.startswith(exc.name):
            raise Unavailable(f"{module} is not part of this build") from None
        raise
    found = getattr(loaded, name, None)
    if found is None:
        raise Unavailable(f"{module}.{name} is not part of this build")
    return found


def available(module: str, name: str) -> bool:
    try:
        provided(module, name)
    except Unavailable:
        return False
    return True
