"""The e-mail channel for processors without an erasure API (carriers, mostly): a templated
Art. 17 erasure request to the processor's privacy address, tracked until the shop owner marks it
confirmed.

A carrier adapter is a few class attributes on `EmailRequestAdapter`:

    class Posti(EmailRequestAdapter):
        name = "posti"
        title = "Posti"
        country = "FI"                          # picks the template language (fi, else en)
        privacy_address = "tietosuoja@posti.com"

Templates are data: add a language by adding a `Template` to `TEMPLATES` (and the country to
`COUNTRY_LANGUAGE`). The shop owner may override the address and the language per shop.

One request covers all of a subject's shipments with the carrier: every shipment holding's erase
call asks the outbox for the same message (same `dedupe_key`), so the processor gets one e-mail.
A request that names no one (the retention sweep) covers the shipments of the step's group: the
sweep fixes its carrier steps into groups of at most 500 when it queues them, and the executor
hands a step only its group's shipments (`plugin.executor.steps.shipment_steps`), so one e-mail
per group names each of them once, worded for an ended retention period (`sweep_subject`,
`sweep_body`), never as if someone had asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from adapters.base import (
    Adapter,
    AdapterConfig,
    Outcome,
    PermanentFailure,
    Result,
    ShopInfo,
    Verification,
)
from adapters.carriers import carrier_adapter
from plugin.holdings import Category, Holding, Shipment, Subject

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


TEMPLATES: dict[str, Template] = {
    "sv": Template(
        subject="Begäran om radering av personuppgifter (GDPR art. 17), ref. {reference}",
        body=(
            "Hej,\n\n"
            "Vi är {shop_intro}. En av våra kunder, som har fått försändelser från oss "
            "genom {processor}, har begärt att hens personuppgifter raderas.\n\n"
            "Med stöd av artikel 17 i dataskyddsförordningen (EU) 2016/679 ber vi er radera de "
            "personuppgifter ni behandlar om mottagaren av försändelserna nedan (namn, adress, "
            "telefonnummer och e-postadress), utom de uppgifter ni enligt lag måste spara. Om ni "
            "behåller uppgifter, tala om vilka, varför och till när (artikel 17.3).\n\n"
            "Mottagaren:\n{identifiers}\n\n"
            "Försändelser ({count}):\n{shipments}\n\n"
            "Svara till {reply_to} inom en månad (artikel 12.3) och ange vår referens {reference}.\n\n"
            "Med vänlig hälsning\n{signature}\n"
        ),
        email_line="- E-postadress: {email}",
        phone_line="- Telefonnummer: {phone}",
        shipment_line="- Försändelse {tracking}, order {order}, levererad {delivered}",
        no_tracking="(utan kollinummer)",
        unknown_date="okänt datum",
        sweep_subject=(
            "Radering av personuppgifter efter lagringstidens slut (GDPR art. 5.1 e och 17.1 a), "
            "ref. {reference}"
        ),
        sweep_body=(
            "Hej,\n\n"
            "Vi är {shop_intro}. Den lagringstid vi har bestämt för försändelserna nedan, "
            "som vi har skickat genom {processor}, har löpt ut.\n\n"
            "Personuppgifterna om mottagarna behövs inte längre för de ändamål för vilka de samlades in. "
            "Med stöd av principen om lagringsminimering (artikel 5.1 e) och artikel 17.1 a i "
            "dataskyddsförordningen (EU) 2016/679 ber vi er därför radera de personuppgifter ni "
            "behandlar om mottagarna av försändelserna nedan (namn, adress, telefonnummer och "
            "e-postadress), utom de uppgifter ni enligt lag måste spara. Om ni behåller uppgifter, tala "
            "om vilka, varför och till när.\n\n"
            "Försändelser ({count}):\n{shipments}\n\n"
            "Bekräfta raderingen till {reply_to} inom en månad och ange vår referens {reference}.\n\n"
            "Med vänlig hälsning\n{signature}\n"
        ),
    ),
    "en": Template(
        subject="Request for erasure of personal data (GDPR Art. 17), ref. {reference}",
        body=(
            "Hello,\n\n"
            "We are {shop_intro}. One of our customers, who received shipments from us "
            "through {processor}, has asked for their personal data to be erased.\n\n"
            "Under Article 17 of the General Data Protection Regulation (EU) 2016/679 we ask you to "
            "erase the personal data you process about the recipient of the shipments below (name, "
            "address, phone number and e-mail address), except what the law requires you to keep. If "
            "you keep any data, please tell us which, why and until when (Article 17(3)).\n\n"
            "The recipient:\n{identifiers}\n\n"
            "Shipments ({count}):\n{shipments}\n\n"
            "Please reply to {reply_to} within one month (Article 12(3)), quoting our reference "
            "{reference}.\n\n"
            "Kind regards\n{signature}\n"
        ),
        email_line="- E-mail address: {email}",
        phone_line="- Phone number: {phone}",
        shipment_line="- Shipment {tracking}, order {order}, delivered {delivered}",
        no_tracking="(no tracking number)",
        unknown_date="unknown date",
        sweep_subject=(
            "Request for erasure of personal data, retention period ended (GDPR Art. 5(1)(e), 17(1)(a)), "
            "ref. {reference}"
        ),
        sweep_body=(
            "Hello,\n\n"
            "We are {shop_intro}. The retention period we have set for the shipments "
            "below, which we sent through {processor}, has ended.\n\n"
            "The personal data of their recipients are no longer necessary for the purposes for which "
            "they were collected. Under the storage limitation principle (Article 5(1)(e)) and Article "
            "17(1)(a) of the General Data Protection Regulation (EU) 2016/679 we therefore ask you to "
            "erase the personal data you process about the recipients of the shipments below (name, "
            "address, phone number and e-mail address), except what the law requires you to keep. If "
            "you keep any data, please tell us which, why and until when.\n\n"
            "Shipments ({count}):\n{shipments}\n\n"
            "Please confirm the erasure to {reply_to} within one month, quoting our reference "
            "{reference}.\n\n"
            "Kind regards\n{signature}\n"
        ),
    ),
    "fi": Template(
        subject="Henkilötietojen poistopyyntö (GDPR 17 artikla), viite {reference}",
        body=(
            "Hei,\n\n"
            "Olemme {shop_intro}. Eräs asiakkaamme, jolle olemme lähettäneet lähetyksiä "
            "palveluntarjoajan {processor} kautta, on pyytänyt henkilötietojensa poistamista.\n\n"
            "Pyydämme yleisen tietosuoja-asetuksen (EU) 2016/679 17 artiklan nojalla, että poistatte "
            "alla lueteltujen lähetysten vastaanottajasta käsittelemänne henkilötiedot (nimi, osoite, "
            "puhelinnumero ja sähköpostiosoite) lukuun ottamatta tietoja, jotka teidän on lain mukaan "
            "säilytettävä. Jos säilytätte tietoja, kertokaa mitä tietoja, miksi ja mihin asti "
            "(17 artiklan 3 kohta).\n\n"
            "Vastaanottaja:\n{identifiers}\n\n"
            "Lähetykset ({count}):\n{shipments}\n\n"
            "Vastatkaa osoitteeseen {reply_to} kuukauden kuluessa (12 artiklan 3 kohta) ja mainitkaa "
            "viitteemme {reference}.\n\n"
            "Ystävällisin terveisin\n{signature}\n"
        ),
        email_line="- Sähköpostiosoite: {email}",
        phone_line="- Puhelinnumero: {phone}",
        shipment_line="- Lähetys {tracking}, tilaus {order}, toimitettu {delivered}",
        no_tracking="(ei seurantanumeroa)",
        unknown_date="tuntematon päivä",
        sweep_subject=(
            "Henkilötietojen poistopyyntö säilytysajan päätyttyä (GDPR 5 art. 1 e ja 17 art. 1 a), "
            "viite {reference}"
        ),
        sweep_body=(
            "Hei,\n\n"
            "Olemme {shop_intro}. Säilytysaika, jonka olemme määrittäneet alla "
            "luetelluille lähetyksille (lähetetty palveluntarjoajan {processor} kautta), on päättynyt.\n\n"
            "Vastaanottajien henkilötietoja ei enää tarvita niihin tarkoituksiin, joita varten ne "
            "kerättiin. Pyydämme siksi yleisen tietosuoja-asetuksen (EU) 2016/679 säilytyksen "
            "rajoittamisen periaatteen (5 artiklan 1 kohdan e alakohta) ja 17 artiklan 1 kohdan "
            "a alakohdan nojalla, että poistatte alla lueteltujen lähetysten vastaanottajista "
            "käsittelemänne henkilötiedot (nimi, osoite, puhelinnumero ja sähköpostiosoite) lukuun "
            "ottamatta tietoja, jotka teidän on lain mukaan säilytettävä. Jos säilytätte tietoja, "
            "kertokaa mitä tietoja, miksi ja mihin asti.\n\n"
            "Lähetykset ({count}):\n{shipments}\n\n"
            "Vahvistakaa poisto osoitteeseen {reply_to} kuukauden kuluessa ja mainitkaa viitteemme "
            "{reference}.\n\n"
            "Ystävällisin terveisin\n{signature}\n"
        ),
    ),
    "no": Template(  # Norwegian Bokmål
        subject="Anmodning om sletting av personopplysninger (GDPR art. 17), ref. {reference}",
        body=(
            "Hei,\n\n"
            "Vi er {shop_intro}. En av våre kunder, som har mottatt sendinger fra oss "
            "gjennom {processor}, har bedt om at personopplysningene sine blir slettet.\n\n"
            "Med hjemmel i artikkel 17 i personvernforordningen (EU) 2016/679 ber vi dere slette "
            "personopplysningene dere behandler om mottakeren av sendingene nedenfor (navn, adresse, "
            "telefonnummer og e-postadresse), unntatt opplysninger dere etter lov må oppbevare. Dersom "
            "dere beholder opplysninger, ber vi dere opplyse hvilke, hvorfor og hvor lenge "
            "(artikkel 17 nr. 3).\n\n"
            "Mottakeren:\n{identifiers}\n\n"
            "Sendinger ({count}):\n{shipments}\n\n"
            "Vennligst svar til {reply_to} innen én måned (artikkel 12 nr. 3) og oppgi vår referanse "
            "{reference}.\n\n"
            "Med vennlig hilsen\n{signature}\n"
        ),
        email_line="- E-postadresse: {email}",
        phone_line="- Telefonnummer: {phone}",
        shipment_line="- Sending {tracking}, ordre {order}, levert {delivered}",
        no_tracking="(uten sporingsnummer)",
        unknown_date="ukjent dato",
        sweep_subject=(
            "Anmodning om sletting av personopplysninger etter utløpt lagringstid "
            "(GDPR art. 5 nr. 1 bokstav e og art. 17 nr. 1 bokstav a), ref. {reference}"
        ),
        sweep_body=(
            "Hei,\n\n"
            "Vi er {shop_intro}. Lagringstiden vi har fastsatt for sendingene nedenfor, "
            "som vi har sendt gjennom {processor}, er utløpt.\n\n"
            "Personopplysningene om mottakerne er ikke lenger nødvendige for formålene de ble samlet "
            "inn for. Med hjemmel i prinsippet om lagringsbegrensning (artikkel 5 nr. 1 bokstav e) og "
            "artikkel 17 nr. 1 bokstav a i personvernforordningen (EU) 2016/679 ber vi dere derfor "
            "slette personopplysningene dere behandler om mottakerne av sendingene nedenfor (navn, "
            "adresse, telefonnummer og e-postadresse), unntatt opplysninger dere etter lov må "
            "oppbevare. Dersom dere beholder opplysninger, ber vi dere opplyse hvilke, hvorfor og hvor "
            "lenge.\n\n"
            "Sendinger ({count}):\n{shipments}\n\n"
            "Vennligst bekreft slettingen til {reply_to} innen én måned og oppgi vår referanse "
            "{reference}.\n\n"
            "Med vennlig hilsen\n{signature}\n"
        ),
    ),
    "da": Template(
        subject="Anmodning om sletning af personoplysninger (GDPR art. 17), ref. {reference}",
        body=(
            "Hej,\n\n"
            "Vi er {shop_intro}. En af vores kunder, som har modtaget forsendelser fra "
            "os gennem {processor}, har bedt om at få sine personoplysninger slettet.\n\n"
            "I henhold til artikel 17 i databeskyttelsesforordningen (EU) 2016/679 beder vi jer slette "
            "de personoplysninger, I behandler om modtageren af forsendelserne nedenfor (navn, adresse, "
            "telefonnummer og e-mailadresse), bortset fra de oplysninger, I efter loven skal opbevare. "
            "Hvis I opbevarer oplysninger, bedes I oplyse hvilke, hvorfor og hvor længe "
            "(artikel 17, stk. 3).\n\n"
            "Modtageren:\n{identifiers}\n\n"
            "Forsendelser ({count}):\n{shipments}\n\n"
            "Svar venligst til {reply_to} inden for en måned (artikel 12, stk. 3), og angiv vores "
            "reference {reference}.\n\n"
            "Med venlig hilsen\n{signature}\n"
        ),
        email_line="- E-mailadresse: {email}",
        phone_line="- Telefonnummer: {phone}",
        shipment_line="- Forsendelse {tracking}, ordre {order}, leveret {delivered}",
        no_tracking="(uden trackingnummer)",
        unknown_date="ukendt dato",
        sweep_subject=(
            "Anmodning om sletning af personoplysninger efter udløbet opbevaringsperiode "
            "(GDPR art. 5, stk. 1, litra e, og art. 17, stk. 1, litra a), ref. {reference}"
        ),
        sweep_body=(
            "Hej,\n\n"
            "Vi er {shop_intro}. Den opbevaringsperiode, vi har fastsat for "
            "forsendelserne nedenfor, som vi har sendt gennem {processor}, er udløbet.\n\n"
            "Personoplysningerne om modtagerne er ikke længere nødvendige til de formål, de blev "
            "indsamlet til. I henhold til princippet om opbevaringsbegrænsning (artikel 5, stk. 1, "
            "litra e) og artikel 17, stk. 1, litra a, i databeskyttelsesforordningen (EU) 2016/679 "
            "beder vi jer derfor slette de personoplysninger, I behandler om modtagerne af "
            "forsendelserne nedenfor (navn, adresse, telefonnummer og e-mailadresse), bortset fra de "
            "oplysninger, I efter loven skal opbevare. Hvis I opbevarer oplysninger, bedes I oplyse "
            "hvilke, hvorfor og hvor længe.\n\n"
            "Forsendelser ({count}):\n{shipments}\n\n"
            "Bekræft venligst sletningen til {reply_to} inden for en måned, og angiv vores reference "
            "{reference}.\n\n"
            "Med venlig hilsen\n{signature}\n"
        ),
    ),
    "de": Template(
        subject="Antrag auf Löschung personenbezogener Daten (Art. 17 DSGVO), Az. {reference}",
        body=(
            "Sehr geehrte Damen und Herren,\n\n"
            "wir sind {shop_intro}. Eine Person, die als unsere Kundin oder unser Kunde "
            "Sendungen von uns über {processor} erhalten hat, hat die Löschung ihrer personenbezogenen "
            "Daten verlangt.\n\n"
            "Gemäß Artikel 17 der Datenschutz-Grundverordnung (EU) 2016/679 bitten wir Sie, die "
            "personenbezogenen Daten zu löschen, die Sie über die Empfängerin oder den Empfänger der "
            "unten aufgeführten Sendungen verarbeiten (Name, Anschrift, Telefonnummer und "
            "E-Mail-Adresse), soweit Sie diese nicht aufgrund gesetzlicher Pflichten aufbewahren müssen. "
            "Falls Sie Daten aufbewahren, teilen Sie uns bitte mit, welche, warum und bis wann "
            "(Art. 17 Abs. 3 DSGVO).\n\n"
            "Empfänger/in:\n{identifiers}\n\n"
            "Sendungen ({count}):\n{shipments}\n\n"
            "Bitte antworten Sie innerhalb eines Monats (Art. 12 Abs. 3 DSGVO) an {reply_to} unter "
            "Angabe unseres Aktenzeichens {reference}.\n\n"
            "Mit freundlichen Grüßen\n{signature}\n"
        ),
        email_line="- E-Mail-Adresse: {email}",
        phone_line="- Telefonnummer: {phone}",
        shipment_line="- Sendung {tracking}, Bestellung {order}, zugestellt am {delivered}",
        no_tracking="(ohne Sendungsnummer)",
        unknown_date="unbekanntes Datum",
        sweep_subject=(
            "Antrag auf Löschung personenbezogener Daten nach Ablauf der Speicherfrist "
            "(Art. 5 Abs. 1 lit. e, Art. 17 Abs. 1 lit. a DSGVO), Az. {reference}"
        ),
        sweep_body=(
            "Sehr geehrte Damen und Herren,\n\n"
            "wir sind {shop_intro}. Für die unten aufgeführten Sendungen, die wir über "
            "{processor} versandt haben, ist die von uns festgelegte Speicherfrist abgelaufen.\n\n"
            "Die personenbezogenen Daten der Empfängerinnen und Empfänger sind für die Zwecke, für die "
            "sie erhoben wurden, nicht mehr notwendig. Gemäß dem Grundsatz der Speicherbegrenzung "
            "(Art. 5 Abs. 1 lit. e DSGVO) und Art. 17 Abs. 1 lit. a der Datenschutz-Grundverordnung "
            "(EU) 2016/679 bitten wir Sie daher, die personenbezogenen Daten zu löschen, die Sie über "
            "die Empfängerinnen und Empfänger der unten aufgeführten Sendungen verarbeiten (Name, "
            "Anschrift, Telefonnummer und E-Mail-Adresse), soweit Sie diese nicht aufgrund "
            "gesetzlicher Pflichten aufbewahren müssen. Falls Sie Daten aufbewahren, teilen Sie uns "
            "bitte mit, welche, warum und bis wann.\n\n"
            "Sendungen ({count}):\n{shipments}\n\n"
            "Bitte bestätigen Sie die Löschung innerhalb eines Monats an {reply_to} unter Angabe "
            "unseres Aktenzeichens {reference}.\n\n"
            "Mit freundlichen Grüßen\n{signature}\n"
        ),
    ),
}

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
    """The same reference `plugin.shopify.holdings` gives the shipment, so the two meet."""
    return f"shipment:{shipment.order_id}:{shipment.tracking_number or 'untracked'}"


def _shipment_from_ref(ref: str) -> Shipment | None:
    parts = ref.split(":", 2)
    if len(parts) != 3 or parts[0] != "shipment" or not parts[1].isdigit():
        return None
    tracking = None if parts[2] == "untracked" else parts[2]
    return Shipment(order_id=int(parts[1]), order_name=f"#{parts[1]}", carrier=None, tracking_number=tracking)


def names_no_one(subject: Subject) -> bool:
    """A retention sweep's "subject": its request names no one (no customer, e-mail or phone)."""
    return subject.customer_id is None and not subject.email and not subject.phone


class EmailRequestAdapter(Adapter):
    """Base for processors reached by e-mail. Subclasses set name, title, country, privacy_address."""

    channel = "email"
    category: ClassVar[Category] = Category.SHIPMENT
    Config: ClassVar[type[AdapterConfig]] = EmailRequestConfig
    country: ClassVar[str] = ""  # ISO 3166-1 alpha-2 of the processor, picks the language
    privacy_address: ClassVar[str | None] = None  # None: the shop owner must enter one
    # `find` lists the shipments Shopify reports for this carrier, not what the carrier holds.
    verification = Verification(asks_provider=False)

    @property
    def settings(self) -> EmailRequestConfig:
        assert isinstance(self.config, EmailRequestConfig)
        return self.config

    def address(self) -> str:
        found = self.settings.privacy_email or self.privacy_address
        if not found:
            raise PermanentFailure(self.name, "no privacy address is known; set `privacy_email`")
        return found

    def language(self) -> str:
        wanted = self.settings.language or COUNTRY_LANGUAGE.get(self.country.upper(), FALLBACK_LANGUAGE)
        return wanted if wanted in TEMPLATES else FALLBACK_LANGUAGE

    def shipments(self, subject: Subject) -> list[Shipment]:
        """The subject's shipments whose carrier maps to this adapter."""
        return [s for s in subject.shipments if carrier_adapter(s.carrier) == self.name]

    async def check(self) -> None:
        self.address()
        if self.ctx.email is None:
            raise PermanentFailure(self.name, "no e-mail channel is available to this shop")

    async def find(self, subject: Subject) -> list[Holding]:
        return [
            Holding(
                system=self.name,
                category=self.category,
                ref=shipment_ref(shipment),
                label=f"Shipment {shipment.tracking_number or '(no tracking number)'} "
                f"of order {shipment.order_name}",
                delivered=shipment.delivered,
                country=shipment.country,
            )
            for shipment in self.shipments(subject)
        ]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        if self.ctx.email is None:
            raise PermanentFailure(self.name, "no e-mail channel is available to this shop")
        if not self.ctx.shop.contact_email:
            # The processor must be able to answer the controller: asking it to reply to a shop
            # domain (or to Gallra) leaves the request without an answer anyone reads.
            raise PermanentFailure(
                self.name,
                "the shop's contact e-mail address is not known: set it (gallra shop add "
                "--contact-email, or the admin's shop details), then retry this step",
            )
        shipments = self.covered(subject, holding)
        if not shipments and not subject.email and not subject.phone:
            raise PermanentFailure(
                self.name, "nothing identifies the recipient (no e-mail, phone or shipment)"
            )
        subject_line, body = self.render(subject, shipments)
        reference = await self.ctx.email.send(
            to=self.address(),
            subject=subject_line,
            body=body,
            reply_to=self.ctx.shop.contact_email,
            dedupe_key=self._dedupe_key(subject, shipments),
        )
        return Result(
            Outcome.REQUEST_SENT,
            provider_ref=reference,
            detail=f"erasure request e-mailed to {self.title}'s privacy contact "
            f"({len(shipments)} shipment(s)); awaiting confirmation",
        )

    def covered(self, subject: Subject, holding: Holding) -> list[Shipment]:
        """The shipments one erase call names, so that each is named once across the e-mails of
        one request: all of the subject's shipments with this processor (the step's own included),
        one e-mail that the steps of those shipments share (same `dedupe_key`). For a customer's
        request they are that customer's shipments; for a sweep, the shipments of the step's
        group, which the executor rebuilt from that group's steps alone."""
        shipments = self.shipments(subject)
        if holding.ref not in {shipment_ref(s) for s in shipments}:
            extra = _shipment_from_ref(holding.ref)
            if extra is not None:
                shipments.append(extra)
        return shipments

    def _dedupe_key(self, subject: Subject, shipments: list[Shipment]) -> str:
        # A sweep's groups are disjoint, so their shipment refs tell them apart without a subject.
        refs = ",".join(sorted(shipment_ref(s) for s in shipments))
        who = subject.customer_id or subject.email or subject.phone or ""
        return f"{self.name}:erase:{who}:{refs}"

    def render(self, subject: Subject, shipments: list[Shipment]) -> tuple[str, str]:
        """The request's subject line and body, with `{reference}` left for the outbox. A request
        that names no one is a retention sweep's and gets the sweep wording."""
        template = TEMPLATES[self.language()]
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
        shop = self.ctx.shop
        values = {
            "shop_intro": shop_intro(shop),
            "signature": signature(shop),
            "shop_name": shop.name,
            "shop_domain": self.ctx.shop.domain,
            "processor": self.title,
            "identifiers": "\n".join(identifiers) or "-",
            "shipments": "\n".join(lines) or "-",
            "count": str(len(lines)),
            "reply_to": shop.contact_email or "-",
            "reference": "{reference}",
        }
        if names_no_one(subject):
            return template.sweep_subject.format_map(values), template.sweep_body.format_map(values)
        return template.subject.format_map(values), template.body.format_map(values)

    async def export(self, subject: Subject) -> dict[str, Any]:
        """What the processor received, as far as the shop's own records show: the subject's
        shipments with it. Empty when it received none (it then knows nothing of the subject)."""
        if not self.shipments(subject):
            return {}
        return {
            "processor": self.title,
            "channel": "email",
            "privacy_address": self.settings.privacy_email or self.privacy_address,
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
                for s in self.shipments(subject)
            ],
        }
