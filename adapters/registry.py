"""The adapter catalogue: every `Adapter` subclass in this package, plus third-party adapters
registered under the entry-point group `gallra.adapters`, and what it knows from their
declarations: each provider as a recipient of the shop's data (`recipients()`; the carriers'
spellings are read by `adapters.carriers`).

The catalogue is what a shop owner can connect. A built-in system every shop has without
connecting it (`Adapter.configurable` False: Gallra's own records) is not in it; `system()` and
`erased_last()` know it too, for the executor, which runs its steps like any other.

A third-party adapter is one module and one entry point:

    [project.entry-points."gallra.adapters"]
    exempel = "gallra_exempel:Exempel"

Its name must be its own: an entry point that would replace a built-in adapter (or another
plug-in's) is an error naming both, never a silent replacement."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points

import adapters
from adapters.base import Adapter
from adapters.recipients import Recipient

ENTRY_POINT_GROUP = "gallra.adapters"
_NOT_ADAPTERS = {"base", "carriers", "email_request", "errors", "http", "recipients", "registry"}


class UnknownAdapter(KeyError):
    pass


class CatalogueError(TypeError):
    """The installed adapters cannot form one catalogue (a clash of names, not an adapter)."""


def _built_in() -> dict[str, type[Adapter]]:
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
    return found


@lru_cache(maxsize=1)
def systems() -> dict[str, type[Adapter]]:
    """Every installed adapter by name: the built-in ones (Gallra's own records included) and the
    entry points'. A step's `system` is one of these."""
    found = _built_in()
    origin = {name: f"the built-in adapter {cls.__module__}" for name, cls in found.items()}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Adapter) and "name" in vars(cls)):
            raise CatalogueError(
                f"entry point {point.name!r} ({point.value}) is not an Adapter subclass with its own `name`"
            )
        for taken in dict.fromkeys((point.name, cls.name)):
            if taken in origin:
                raise CatalogueError(
                    f"entry point {point.name!r} ({point.value}) would replace {origin[taken]} "
                    f"named {taken!r}; give the third-party adapter a name of its own"
                )
        found[cls.name] = cls
        origin[cls.name] = origin[point.name] = f"the entry point {point.name!r} ({point.value})"
    return dict(sorted(found.items()))


@lru_cache(maxsize=1)
def catalogue() -> dict[str, type[Adapter]]:
    """The adapters a shop owner can connect, by name."""
    return {name: cls for name, cls in systems().items() if cls.configurable}


def get(name: str) -> type[Adapter]:
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownAdapter(f"no adapter named {name!r}; see `gallra adapters list`") from None


def system(name: str) -> type[Adapter]:
    """The adapter of a step's system, connectable or not."""
    try:
        return systems()[name]
    except KeyError:
        raise UnknownAdapter(f"no adapter named {name!r}; see `gallra adapters list`") from None


def connected(name: str) -> bool:
    """Whether `name` is a system a shop connects: anything but a built-in one every shop has (an
    adapter no longer installed included)."""
    cls = systems().get(name)
    return cls is None or cls.configurable


def erased_last() -> tuple[str, ...]:
    """The systems whose steps wait until every other step of their request has settled."""
    return tuple(name for name, cls in systems().items() if cls.erased_last)


def recipients() -> dict[str, Recipient]:
    """Each adapter's provider as a recipient of the shop's data, as the adapter declares it."""
    return {name: cls.recipient for name, cls in catalogue().items() if cls.recipient is not None}
