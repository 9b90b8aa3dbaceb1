"""Which language a shop's documents are written in, and the words both templates share."""

from __future__ import annotations

from typing import Literal

from plugin.models import Shop

Lang = Literal["sv", "en"]
LANGUAGES: tuple[Lang, ...] = ("sv", "en")


def shop_language(shop: Shop | None) -> Lang:
    """Swedish for a Swedish shop, English otherwise. The shop's locale wins when it is known (a
    Swedish-registered shop may sell in English); without one, the country decides."""
    if shop is None:
        return "en"
    if shop.locale:
        return "sv" if shop.locale.lower().startswith("sv") else "en"
    return "sv" if (shop.country or "").upper() == "SE" else "en"


# Countries the recipient table names; an unknown code is shown as the code itself.
COUNTRIES: dict[str, dict[str, str]] = {
    "AU": {"sv": "Australien", "en": "Australia"},
    "CA": {"sv": "Kanada", "en": "Canada"},
    "DE": {"sv": "Tyskland", "en": "Germany"},
    "DK": {"sv": "Danmark", "en": "Denmark"},
    "FI": {"sv": "Finland", "en": "Finland"},
    "FR": {"sv": "Frankrike", "en": "France"},
    "GB": {"sv": "Storbritannien", "en": "the United Kingdom"},
    "IE": {"sv": "Irland", "en": "Ireland"},
    "LT": {"sv": "Litauen", "en": "Lithuania"},
    "NL": {"sv": "Nederländerna", "en": "the Netherlands"},
    "NO": {"sv": "Norge", "en": "Norway"},
    "SE": {"sv": "Sverige", "en": "Sweden"},
    "US": {"sv": "USA", "en": "the United States"},
}


def country_name(code: str | None, lang: str) -> str:
    if code is None:
        return ""
    names = COUNTRIES.get(code.upper())
    return names[lang] if names else code


# The planner's field names (`reduce_fields`) as a reader says them.
FIELDS: dict[str, dict[str, str]] = {
    "name": {"sv": "namn", "en": "name"},
    "phone": {"sv": "telefonnummer", "en": "phone number"},
    "email": {"sv": "e-postadress", "en": "e-mail address"},
    "address": {"sv": "adress", "en": "address"},
    "profile_properties": {"sv": "profiluppgifter", "en": "profile properties"},
    "activity_history": {"sv": "aktivitetshistorik", "en": "activity history"},
}


def field_names(fields: list[str] | tuple[str, ...], lang: str) -> str:
    return ", ".join(FIELDS[f][lang] if f in FIELDS else f for f in fields)
