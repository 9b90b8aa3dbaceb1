"""The e-mail channel, for processors without an erasure API (carriers, mostly) and for what an
API cannot erase: a templated Art. 17 erasure request to the processor's privacy address, tracked
until the shop owner marks it confirmed.

An adapter *has* an e-mail channel: it declares one, and a carrier without an API is nothing more:

    class Posti(Adapter[EmailRequestConfig]):
        name = "posti"
        title = "Posti"
        category = Category.SHIPMENT
        # Picks the template language (fi, else en); address None: the shop owner must enter one.
        mail = EmailRequests(country="FI", address="tietosuoja@posti.com")

`Adapter.find`, `erase` and `export` then go through the channel, and `Adapter.check` checks it. An
API adapter declares the channel the same way (its Config also extends `EmailRequestConfig`) and
calls `await self.mail.request(self, subject, shipments, done="label cancelled")` for the rest.

Templates are data: add a language by adding `adapters/templates/erasure_request/<lang>.toml`
with every key the others have (and the country to `COUNTRY_LANGUAGE`). The shop owner may
override the address and the language per shop.

One request covers all of a subject's shipments with the carrier: every shipment holding's erase
call asks the outbox for the same message (same `dedupe_key`), so the processor gets one e-mail.
A request that names no one (the retention sweep) covers the shipments of the step's group: the
sweep fixes its carrier steps into groups of at most 500 when it queues them, and the executor
hands a step only its group's shipments (`plugin.executor.shipments.shipment_steps`), so one e-mail
per group names each of them once, worded for an ended retention period (`sweep_subject`,
`sweep_body`), never as if someone had asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from pydantic import Field, field_validator

from adapters.base import (
    Adapter,
    AdapterConfig,
    Channel,
    EmailOverrides,
    Outcome,
    PermanentFailure,
    Result,
    ShopInfo,
)
from adapters.carriers import carrier_adapter
from plugin.holdings import Holding, Shipment, ShipmentRef, Subject, shipment_of_holding
from plugin.i18n import load_texts

_ADDRESS = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")


@dataclass(frozen=True)
class Template:
    """One language's erasure request. Placeholders: {shop_intro} (the shop's name, legal name and
    domain) {signature} (name, legal name, address, contact address; one a line) {shop_name}
    {shop_domain} {processor} {identifiers} {shipments} {count} {reply_to} {reference} (filled in
    by the outbox)."""

    subject: str
    body: str
    email_line: str  # {email}
    phone_line: str  # {phone}
    shipment_line: str  # {tracking} {order} {delivered}
    no_tracking: str
    unknown_date: str
    # A retention sweep's request: no one asked; the shop's retention period for the shipments
    # ended (Art. 5(1)(e), 17(1)(a)). Same placeholders; no recipient section (it names no one).
    sweep_subject: str
    sweep_body: str


def load_templates() -> dict[str, Template]:
    """Every language's request: `adapters/templates/erasure_request/<lang>.toml`, read with the
    catalogue loader every text of Gallra's goes through (`plugin.i18n`)."""
    folder = files("adapters").joinpath(TEMPLATE_FOLDER)
    return {
        entry.name.removesuffix(".toml"): Template(
            **load_texts("adapters", f"{TEMPLATE_FOLDER}/{entry.name}")
        )
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".toml")
    }


TEMPLATE_FOLDER = "templates/erasure_request"
TEMPLATES: dict[str, Template] = load_templates()

# The language a carrier's country reads; languages without a template fall back to English.
COUNTRY_LANGUAGE: dict[str, str] = {"SE": "sv", "FI": "fi", "NO": "no", "DK": "da", "DE": "de", "AT": "de"}
FALLBACK_LANGUAGE = "en"


class EmailRequestConfig(AdapterConfig):
    privacy_email: str | None = Field(
        default=None,
        description="Where erasure requests go. Leave empty to use the processor's privacy address "
        "from Gallra's reference.",
    )
    language: str | None = Field(
        default=None,
        description="Two-letter language of the request (sv, en, …). Leave empty to use the "
        "processor's country.",
    )

    @field_validator("privacy_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _ADDRESS.match(value.strip()):
            raise ValueError("not an e-mail address")
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if value.strip().lower() not in TEMPLATES:
            raise ValueError(f"no template in that language; available: {', '.join(sorted(TEMPLATES))}")
        return value.strip().lower()

    def email_overrides(self) -> EmailOverrides:
        return EmailOverrides(self.privacy_email, self.language)


def shop_intro(shop: ShopInfo) -> str:
    """How the request introduces the shop: its name, then its legal name (the controller the
    processor must recognise) and its Shopify domain."""
    legal = shop.legal_name if shop.legal_name and shop.legal_name != shop.name else None
    return f"{shop.name} ({legal}, {shop.domain})" if legal else f"{shop.name} ({shop.domain})"


def signature(shop: ShopInfo) -> str:
    """The sign-off: who the controller is and where to reach it, one item a line."""
    lines = [shop.name]
    if shop.legal_name and shop.legal_name != shop.name:
        lines.append(shop.legal_name)
    lines += [value for value in (shop.address, shop.contact_email) if value]
    return "\n".join(lines)


def shipment_ref(shipment: Shipment) -> str:
    """The reference `adapters.shopify_holdings` gives the shipment, so the two meet."""
    return ShipmentRef.of(shipment).format()


def names_no_one(subject: Subject) -> bool:
    """A retention sweep's "subject": its request names no one (no customer, e-mail or phone)."""
    return subject.customer_id is None and not subject.email and not subject.phone


class EmailRequests(Channel):
    """An adapter's e-mail channel: where its provider takes erasure requests and in which
    language, declared once on the adapter class (`mail = EmailRequests(country=..., address=...)`)
    and given the adapter at each call. The shop owner may override the address and the language
    per shop (`EmailRequestConfig`)."""

    def __init__(self, *, country: str, address: str | None) -> None:
        self.country = country  # ISO 3166-1 alpha-2 of the processor, picks the language
        self.address = address  # the processor's privacy address; None: the shop owner must enter one

    def to(self, adapter: Adapter) -> str:
        """Where the requests go: the shop owner's address, else the processor's known one."""
        found = adapter.config.email_overrides().address or self.address
        if not found:
            raise PermanentFailure(adapter.name, "no privacy address is known; set `privacy_email`")
        return found

    def language(self, adapter: Adapter) -> str:
        wanted = adapter.config.email_overrides().language or COUNTRY_LANGUAGE.get(
            self.country.upper(), FALLBACK_LANGUAGE
        )
        return wanted if wanted in TEMPLATES else FALLBACK_LANGUAGE

    def shipments(self, adapter: Adapter, subject: Subject) -> list[Shipment]:
        """The subject's shipments whose carrier maps to this adapter."""
        return [s for s in subject.shipments if carrier_adapter(s.carrier) == adapter.name]

    async def check(self, adapter: Adapter) -> None:
        self.to(adapter)
        if adapter.ctx.email is None:
            raise PermanentFailure(adapter.name, "no e-mail channel is available to this shop")

    async def find(self, adapter: Adapter, subject: Subject) -> list[Holding]:
        return [
            Holding(
                system=adapter.name,
                category=adapter.category,
                ref=shipment_ref(shipment),
                label=ShipmentRef.of(shipment).label(shipment.order_name),
                delivered=shipment.delivered,
                country=shipment.country,
            )
            for shipment in self.shipments(adapter, subject)
        ]

    async def erase(self, adapter: Adapter, subject: Subject, holding: Holding) -> Result:
        if adapter.ctx.email is None:
            raise PermanentFailure(adapter.name, "no e-mail channel is available to this shop")
        if not adapter.ctx.shop.contact_email:
            # The processor must be able to answer the controller: asking it to reply to a shop
            # domain (or to Gallra) leaves the request without an answer anyone reads.
            raise PermanentFailure(
                adapter.name,
                "the shop's contact e-mail address is not known: set it (gallra shop add "
                "--contact-email, or the admin's shop details), then retry this step",
            )
        shipments = self.covered(adapter, subject, holding)
        if not shipments and not subject.email and not subject.phone:
            raise PermanentFailure(
                adapter.name, "nothing identifies the recipient (no e-mail, phone or shipment)"
            )
        reference = await self._send(adapter, subject, shipments)
        return Result(
            Outcome.REQUEST_SENT,
            provider_ref=reference,
            detail=f"erasure request e-mailed to {adapter.title}'s privacy contact "
            f"({len(shipments)} shipment(s)); awaiting confirmation",
        )

    async def request(
        self, adapter: Adapter, subject: Subject, shipments: list[Shipment], *, done: str
    ) -> Result:
        """Ask by e-mail for what the provider's API could not erase; `done` says what the API did."""
        if adapter.ctx.email is None:
            raise PermanentFailure(
                adapter.name, f"{done}; the rest needs the e-mail channel, which this shop lacks"
            )
        reference = await self._send(adapter, subject, shipments)
        return Result(
            Outcome.REQUEST_SENT,
            provider_ref=reference,
            detail=f"{done}; erasure request e-mailed to {adapter.title}'s privacy contact, awaiting reply",
        )

    async def _send(self, adapter: Adapter, subject: Subject, shipments: list[Shipment]) -> str:
        assert adapter.ctx.email is not None  # both callers refuse first, naming the adapter
        to = self.to(adapter)
        subject_line, body = self.render(adapter, subject, shipments)
        # One e-mail per subject and processor: a sweep's groups are disjoint, so their shipment
        # refs tell them apart without a subject.
        refs = ",".join(sorted(shipment_ref(s) for s in shipments))
        who = subject.customer_id or subject.email or subject.phone or ""
        return await adapter.ctx.email.send(
            to=to,
            subject=subject_line,
            body=body,
            reply_to=adapter.ctx.shop.contact_email,
            dedupe_key=f"{adapter.name}:erase:{who}:{refs}",
        )

    def covered(self, adapter: Adapter, subject: Subject, holding: Holding) -> list[Shipment]:
        """The shipments one erase call names, so that each is named once across the e-mails of
        one request: all of the subject's shipments with this processor (the step's own included),
        one e-mail that the steps of those shipments share (same `dedupe_key`). For a customer's
        request they are that customer's shipments; for a sweep, the shipments of the step's
        group, which the executor rebuilt from that group's steps alone."""
        shipments = self.shipments(adapter, subject)
        if holding.ref not in {shipment_ref(s) for s in shipments}:
            extra = shipment_of_holding(holding, carrier=adapter.name)
            if extra is not None:
                shipments.append(extra)
        return shipments

    def own_shipment(self, adapter: Adapter, subject: Subject, holding: Holding) -> Shipment:
        """The shipment a shipment holding (`plugin.holdings.ShipmentRef`) stands for."""
        for shipment in subject.shipments:
            if shipment_ref(shipment) == holding.ref:
                return shipment
        ref = ShipmentRef.parse(holding.ref) or ShipmentRef(0, None)
        return Shipment(
            order_id=ref.order_id,
            order_name=ShipmentRef.order_name_in(holding.label),
            carrier=adapter.name,
            tracking_number=ref.tracking_number,
        )

    def cited(self, adapter: Adapter, subject: Subject, own: Shipment) -> list[Shipment]:
        """What one request names: all of the subject's shipments with this carrier, so that every
        holding's erase asks for the same message."""
        shipments = self.shipments(adapter, subject)
        return shipments if shipment_ref(own) in {shipment_ref(s) for s in shipments} else [*shipments, own]

    def subject_shipments(
        self, adapter: Adapter, subject: Subject, *, tracking: str = "", order: str = ""
    ) -> list[Shipment]:
        """The subject's shipments with this tracking number or order number, or one made up from
        what the provider reported, so the request always cites what is to be erased."""
        found = [
            s
            for s in subject.shipments
            if (tracking and s.tracking_number == tracking) or (order and s.order_name.lstrip("#") == order)
        ]
        if found or not (tracking or order):
            return found
        order_id = int(order) if order.isdigit() else 0
        return [Shipment(order_id, f"#{order}" if order else "?", adapter.title, tracking or None)]

    def render(self, adapter: Adapter, subject: Subject, shipments: list[Shipment]) -> tuple[str, str]:
        """The request's subject line and body, with `{reference}` left for the outbox. A request
        that names no one is a retention sweep's and gets the sweep wording."""
        template = TEMPLATES[self.language(adapter)]
        identifiers = []
        if subject.email:
            identifiers.append(template.email_line.format(email=subject.email))
        if subject.phone:
            identifiers.append(template.phone_line.format(phone=subject.phone))
        lines = [
            template.shipment_line.format(
                tracking=s.tracking_number or template.no_tracking,
                order=s.order_name,
                delivered=s.delivered.isoformat() if s.delivered else template.unknown_date,
            )
            for s in sorted(shipments, key=shipment_ref)
        ]
        shop = adapter.ctx.shop
        values = {
            "shop_intro": shop_intro(shop),
            "signature": signature(shop),
            "shop_name": shop.name,
            "shop_domain": shop.domain,
            "processor": adapter.title,
            "identifiers": "\n".join(identifiers) or "-",
            "shipments": "\n".join(lines) or "-",
            "count": str(len(lines)),
            "reply_to": shop.contact_email or "-",
            "reference": "{reference}",
        }
        if names_no_one(subject):
            return template.sweep_subject.format_map(values), template.sweep_body.format_map(values)
        return template.subject.format_map(values), template.body.format_map(values)

    async def export(self, adapter: Adapter, subject: Subject) -> dict[str, Any]:
        """What the processor received, as far as the shop's own records show: the subject's
        shipments with it. Empty when it received none (it then knows nothing of the subject)."""
        shipments = self.shipments(adapter, subject)
        if not shipments:
            return {}
        return {
            "processor": adapter.title,
            "channel": "email",
            "privacy_address": adapter.config.email_overrides().address or self.address,
            "shipments": [
                {
                    "order": s.order_name,
                    "carrier_as_recorded": s.carrier,
                    "tracking_number": s.tracking_number,
                    "tracking_url": s.tracking_url,
                    "sent": s.created.isoformat() if s.created else None,
                    "delivered": s.delivered.isoformat() if s.delivered else None,
                    "country": s.country,
                }
                for s in shipments
            ],
        }

    async def received(self, adapter: Adapter, subject: Subject, **own: Any) -> dict[str, Any]:
        """An API adapter's export: the shipments the provider received from the shop (what an
        e-mail request names), with the provider's own records (`own`, those not empty) beside."""
        exported = await self.export(adapter, subject)
        exported.update({key: value for key, value in own.items() if value})
        return exported
