"""The controller: the shop Gallra acts for, as every certificate, extract and processor e-mail names it.

Four fields: the shop's name, its legal name, its business address and its contact e-mail. They are
read from the shop's platform (on install, on `gallra shop add`, and again when the platform says the
shop changed) and can be set by the shop owner (`gallra shop add --name …`, the admin). A field the
owner set is an override: it wins over what the platform says and a refresh leaves it alone, until
the owner clears it.

Storage: `name` is the storefront's public trading name and stays plain (the admin lists it, and it
is published on every page of the shop). The legal name, the address and the contact e-mail are
encrypted: a sole trader's legal name is their own name, the business address is often their home
and the contact address often their personal mailbox, so all three are personal data.

This module is the core's: it knows nothing of Shopify. The platform's reading arrives as `Details`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from plugin.crypto import Vault
from plugin.models import Shop, cell_of

# An address an e-mail can be sent to: one @, no spaces or header-breaking characters.
EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
# What documents say where a field is not known: explicitly, never null.
NOT_KNOWN = "not known"
FIELDS = ("name", "legal_name", "address", "contact_email")
# The encrypted column of each field; `name` is plain (see the module's docstring).
_ENCRYPTED = {"legal_name": "legal_name_enc", "address": "address_enc", "contact_email": "contact_email_enc"}


@dataclass(frozen=True)
class Details:
    """The controller's fields as one source gives them; None = not given (or not known)."""

    name: str | None = None
    legal_name: str | None = None
    address: str | None = None
    contact_email: str | None = None

    def given(self) -> dict[str, str]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


def overridden(shop: Shop) -> set[str]:
    return {name for name in (shop.controller_overrides or "").split(",") if name in FIELDS}


def _write(vault: Vault, shop: Shop, field_name: str, value: str | None) -> None:
    value = value.strip() if value else None
    if field_name == "name":
        shop.name = value[:255] if value else None
    else:
        column = _ENCRYPTED[field_name]
        setattr(shop, column, vault.encrypt(value, cell_of(shop, column)))


def apply_platform(vault: Vault, shop: Shop, details: Details) -> None:
    """What the platform says now, for every field the owner has not set (those are kept)."""
    kept = overridden(shop)
    for field_name in FIELDS:
        if field_name not in kept:
            _write(vault, shop, field_name, getattr(details, field_name))


def set_overrides(vault: Vault, shop: Shop, details: Details, *, clear: frozenset[str] = frozenset()) -> None:
    """The owner's own values (`details.given()`), kept over later refreshes; `clear` returns fields
    to the platform's value at the next refresh."""
    unknown = (set(details.given()) | clear) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a controller field: {', '.join(sorted(unknown))}")
    kept = (overridden(shop) - clear) | set(details.given())
    for field_name, value in details.given().items():
        _write(vault, shop, field_name, value)
    shop.controller_overrides = ",".join(name for name in FIELDS if name in kept) or None


def details_of(vault: Vault, shop: Shop) -> Details:
    """The controller's fields as stored (overrides included); None where not known."""
    values: dict[str, Any] = {"name": shop.name}
    for field_name, column in _ENCRYPTED.items():
        values[field_name] = vault.decrypt(getattr(shop, column), cell_of(shop, column))
    return Details(**values)


def controller_document(vault: Vault | None, shop: Shop | None, domain: str) -> dict[str, Any]:
    """The `controller` object of a certificate or an extract: every field present, NOT_KNOWN where
    Gallra does not know it, and which fields those are (`not_known`), so a reader need not compare
    strings. Without a vault only the (plain) name can be read."""
    if shop is None:
        details = Details()
    elif vault is None:
        details = Details(name=shop.name)
    else:
        details = details_of(vault, shop)
    values = {name: getattr(details, name) for name in FIELDS}
    return {
        **{name: value or NOT_KNOWN for name, value in values.items()},
        "domain": domain,
        "not_known": [name for name, value in values.items() if not value],
    }
