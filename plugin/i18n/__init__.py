"""Text in the reader's language: one mechanism for every word Gallra writes.

A catalogue is a TOML file per language, package data beside the code that uses it: Gallra's own
words (the admin, the notifications, the documents) are `plugin/i18n/<lang>.toml`; the erasure
requests to processors are `adapters/templates/erasure_request/<lang>.toml`. A value is a string
with `{name}` placeholders, or a table of plural forms keyed by CLDR plural category
(`one`, `other`, and where a language needs them `zero`, `two`, `few`, `many`), chosen for the
count `n` by Babel's CLDR rules for the language:

    "due.left" = { one = "{n} day left", other = "{n} days left" }

`translate(lang, key, n=3)` picks the form and fills the placeholders. A key missing in a language
falls back to English, a key missing everywhere shows the key itself (a gap is visible on the page,
never an exception); tests/test_i18n.py keeps every key in every language.

Which language a shop reads is `shop_language` (its locale, else its country), the one rule for
its admin pages, documents and notifications.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any, Literal, Protocol

from babel import Locale

Lang = Literal["sv", "en"]
# The languages of Gallra's own words; a shop in any other language reads English.
LANGUAGES: tuple[Lang, ...] = ("sv", "en")
FALLBACK: Lang = "en"
PLURAL_CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})

Entry = str | Mapping[str, str]


class CatalogueError(ValueError):
    """A catalogue file that is not a table of strings and plural tables."""


def load_catalogue(package: str, name: str) -> dict[str, Entry]:
    """The catalogue `name` (e.g. `sv.toml`) shipped in `package`, checked for its shape."""
    text = files(package).joinpath(name).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for key, value in data.items():
        if isinstance(value, str):
            continue
        if not isinstance(value, dict) or not value or "other" not in value:
            raise CatalogueError(f"{package}/{name}: {key} is neither a string nor plural forms with 'other'")
        if set(value) - PLURAL_CATEGORIES or not all(isinstance(v, str) for v in value.values()):
            raise CatalogueError(f"{package}/{name}: {key} has forms other than CLDR plural categories")
    return data


def load_texts(package: str, name: str) -> dict[str, str]:
    """A catalogue of plain strings only (a template's parts, none counted)."""
    texts = {}
    for key, entry in load_catalogue(package, name).items():
        if not isinstance(entry, str):
            raise CatalogueError(f"{package}/{name}: {key} must be a string")
        texts[key] = entry
    return texts


@lru_cache(maxsize=32)
def plural_category(lang: str, n: int) -> str:
    """CLDR plural category of `n` in `lang` (`one`, `other`, ...), English rules for an unknown
    language."""
    try:
        locale = Locale.parse(lang)
    except (ValueError, TypeError, LookupError):
        locale = Locale.parse(FALLBACK)
    return str(locale.plural_form(abs(n)))


def choose(entry: Entry, lang: str, values: Mapping[str, Any]) -> str:
    """The entry's text for `values`: a plural entry's form for the count `values["n"]`."""
    if isinstance(entry, str):
        return entry
    count = values.get("n")
    if count is None:
        return entry["other"]
    return entry.get(plural_category(lang, int(count))) or entry["other"]


@cache
def _own(lang: str) -> dict[str, Entry]:
    return load_catalogue(__name__, f"{lang}.toml")


def catalogue(lang: str) -> dict[str, Entry]:
    """Gallra's own words in `lang` (English for a language it does not have)."""
    return _own(lang if lang in LANGUAGES else FALLBACK)


def translate(lang: str, key: str, default: str | None = None, **values: Any) -> str:
    """The text of `key` in `lang`, its placeholders filled from `values` (`n` also picks the
    plural form)."""
    entry = catalogue(lang).get(key) or catalogue(FALLBACK).get(key)
    if entry is None:
        text = default if default is not None else key
    else:
        text = choose(entry, lang, values)
    return text.format(**values) if values else text


def words(lang: str, prefix: str) -> dict[str, Any]:
    """The keys under `prefix.` as a nested table (`certificate.states.held` is
    `words(lang, "certificate")["states"]["held"]`), for a template that reads many of them."""
    found: dict[str, Any] = {}
    for table in (catalogue(FALLBACK), catalogue(lang)):  # the reader's language over English
        for key, entry in table.items():
            if not key.startswith(prefix + "."):
                continue
            *path, last = key[len(prefix) + 1 :].split(".")
            node = found
            for part in path:
                node = node.setdefault(part, {})
            node[last] = entry if isinstance(entry, str) else entry["other"]
    return found


def count(n: int, unit: str, lang: str) -> str:
    """`1 day`, `2 days`, `1 dag`, `2 dagar`: a count with its unit (`unit.<unit>`) in the right form."""
    return translate(lang, f"unit.{unit}", n=n)


def months(lang: str) -> tuple[str, ...]:
    """The twelve short month names, January first."""
    return tuple(translate(lang, "date.months").split())


def language_of(locale: str | None, country: str | None = None) -> Lang:
    """The language for a reader: the locale when one is known (a Swedish-registered shop may sell
    in English), otherwise the country; English when neither says Swedish."""
    if locale:
        return "sv" if locale.lower().startswith("sv") else "en"
    return "sv" if (country or "").upper() == "SE" else "en"


class Reader(Protocol):
    """What a shop's language is read from (a `plugin.models.Shop`)."""

    @property
    def locale(self) -> str | None: ...

    @property
    def country(self) -> str | None: ...


def shop_language(shop: Reader | None) -> Lang:
    """The language a shop's owner reads: its admin pages, documents and notifications."""
    if shop is None:
        return FALLBACK
    return language_of(shop.locale, shop.country)
