"""One translation mechanism (`plugin.i18n`): every catalogue has every key in every language, with
the same placeholders, and counted texts take the CLDR plural form of their count."""

from __future__ import annotations

import string
from collections.abc import Mapping
from importlib.resources import files

import pytest

from adapters.email_request import TEMPLATE_FOLDER, TEMPLATES
from plugin.i18n import (
    LANGUAGES,
    Entry,
    catalogue,
    count,
    language_of,
    load_catalogue,
    months,
    plural_category,
    shop_language,
    translate,
)
from plugin.models import Shop

COUNTS = (0, 1, 2, 5)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _texts(entry: Entry) -> list[str]:
    return [entry] if isinstance(entry, str) else list(entry.values())


def _erasure_catalogues() -> dict[str, dict[str, Entry]]:
    folder = files("adapters").joinpath(TEMPLATE_FOLDER)
    return {
        entry.name.removesuffix(".toml"): load_catalogue("adapters", f"{TEMPLATE_FOLDER}/{entry.name}")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


CATALOGUES: dict[str, Mapping[str, Mapping[str, Entry]]] = {
    "gallra": {lang: catalogue(lang) for lang in LANGUAGES},
    "erasure_request": _erasure_catalogues(),
}


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_language_has_every_key_with_the_same_placeholders(name: str) -> None:
    languages = CATALOGUES[name]
    english = languages["en"]
    assert len(languages) >= 2
    for lang, table in languages.items():
        assert set(table) == set(english), (lang, set(table) ^ set(english))
        for key, entry in table.items():
            expected = set().union(*(_fields(text) for text in _texts(english[key])))
            found = set().union(*(_fields(text) for text in _texts(entry)))
            # A language may leave out what the words make plain (a count written as "one").
            assert found <= expected | {"n"}, (lang, key)
            if name == "gallra":
                assert found == expected, (lang, key)
            assert isinstance(entry, str) == isinstance(english[key], str), (lang, key)


def test_the_erasure_request_languages_are_the_six_it_had() -> None:
    assert set(TEMPLATES) == {"sv", "en", "fi", "no", "da", "de"}
    assert set(CATALOGUES["erasure_request"]) == set(TEMPLATES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_counted_text_has_the_form_each_count_needs(lang: str) -> None:
    plural = {key: entry for key, entry in catalogue(lang).items() if not isinstance(entry, str)}
    assert {"due.left", "due.overdue", "unit.days", "unit.records", "unit.times"} <= set(plural)
    for key, entry in plural.items():
        for n in COUNTS:
            assert plural_category(lang, n) in entry, (lang, key, n)
            assert str(n) in translate(lang, key, n=n), (lang, key, n)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ["0 days left", "1 day left", "2 days left", "5 days left"]),
        ("sv", ["0 dagar kvar", "1 dag kvar", "2 dagar kvar", "5 dagar kvar"]),
    ],
)
def test_days_left_in_the_right_number(lang: str, expected: list[str]) -> None:
    assert [translate(lang, "due.left", n=n) for n in COUNTS] == expected


def test_counts_overdue_records_and_orders_in_the_right_number() -> None:
    assert [translate("en", "due.overdue", n=n) for n in (1, 2)] == ["1 day overdue", "2 days overdue"]
    assert [translate("sv", "due.overdue", n=n) for n in (1, 5)] == ["1 dag försenat", "5 dagar försenat"]
    assert [count(n, "records", "sv") for n in COUNTS] == ["0 poster", "1 post", "2 poster", "5 poster"]
    assert [translate("en", "request.orders_n", n=n) for n in (1, 2)] == ["1 order", "2 orders"]
    assert translate("sv", "overview.overdue_n", n=1) == "1 försenat"
    assert translate("en", "audit.valid", n=1) == "The evidence chain is intact (1 entry verified)."


def test_a_missing_language_or_key_falls_back_visibly() -> None:
    assert translate("de", "unit.days", n=1) == "1 day"
    assert translate("sv", "no.such.key") == "no.such.key"
    assert months("sv")[4] == "maj" and len(months("en")) == 12


def test_one_rule_for_a_shops_language() -> None:
    assert language_of("sv-SE") == "sv" and language_of("en", "SE") == "en"
    assert language_of(None, "SE") == "sv" and language_of(None, "FI") == "en" and language_of(None) == "en"
    assert shop_language(Shop(domain="a.myshopify.com", country="SE")) == "sv"
    assert shop_language(Shop(domain="a.myshopify.com", country="SE", locale="en")) == "en"
    assert shop_language(None) == "en"
