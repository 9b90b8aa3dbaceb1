"""Words both document templates share, from the catalogue (`plugin.i18n`)."""

from __future__ import annotations

from plugin.i18n import translate


def country_name(code: str | None, lang: str) -> str:
    """A country the recipient table names; an unknown code is shown as the code itself."""
    if code is None:
        return ""
    return translate(lang, f"country.{code.upper()}", default=code)


def field_names(fields: list[str] | tuple[str, ...], lang: str) -> str:
    """The planner's field names (`reduce_fields`) as a reader says them."""
    return ", ".join(translate(lang, f"field.{f}", default=f) for f in fields)
