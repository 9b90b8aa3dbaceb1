"""The adapter catalogue: every `Adapter` subclass in this package, plus third-party adapters
registered under the entry-point group `gallra.adapters`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points

import adapters
from adapters.base import Adapter

_NOT_ADAPTERS = {"base", "http", "registry"}


class UnknownAdapter(KeyError):
    pass


@lru_cache(maxsize=1)
def catalogue() -> dict[str, type[Adapter]]:
    found: dict[str, type[Adapter]] = {}
    for module in pkgutil.iter_modules(adapters.__path__):
        if module.name in _NOT_ADAPTERS or module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"adapters.{module.name}")
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, Adapter)
                and value.__module__ == loaded.__name__
                and "name" in vars(value)
            ):
                found[value.name] = value
    for point in entry_points(group="gallra.adapters"):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise TypeError(f"entry point {point.name!r} is not an Adapter subclass")
        found[cls.name] = cls
    return dict(sorted(found.items()))


def get(name: str) -> type[Adapter]:
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownAdapter(f"no adapter named {name!r}; see `gallra adapters list`") from None
