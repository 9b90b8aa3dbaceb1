"""Plain-language text for rules and decisions, in Swedish and English."""

from __future__ import annotations

from datetime import date

from plugin.retention.rules import Anchor, Period, Rule

LANGS = ("sv", "en")

# (event counted from, what is missing when the date is not known)
_EVENT: dict[Anchor, dict[str, tuple[str, str]]] = {
    Anchor.ORDER_CREATED: {
        "en": ("the order date", "order date unknown"),
        "sv": ("orderdatum", "orderdatum saknas"),
    },
    Anchor.DELIVERED: {
        "en": ("delivery", "delivery date unknown"),
        "sv": ("leverans", "leveransdatum saknas"),
    },
    Anchor.FISCAL_YEAR_END: {
        "en": ("the end of the fiscal year", "order date unknown"),
        "sv": ("räkenskapsårets slut", "orderdatum saknas"),
    },
    Anchor.FISCAL_YEAR_CALENDAR_END: {
        "en": ("the end of the calendar year in which the fiscal year ended", "order date unknown"),
        "sv": ("utgången av det kalenderår då räkenskapsåret slutade", "orderdatum saknas"),
    },
    Anchor.CALENDAR_YEAR_END: {
        "en": ("the end of the order's calendar year", "order date unknown"),
        "sv": ("utgången av orderns kalenderår", "orderdatum saknas"),
    },
    Anchor.LAST_ACTIVITY: {
        "en": ("the last activity", "date of last activity unknown"),
        "sv": ("den senaste aktiviteten", "datum för senaste aktivitet saknas"),
    },
    Anchor.UNSUBSCRIBED: {
        "en": ("unsubscribing or bouncing", "still subscribed (no unsubscribe or bounce date)"),
        "sv": (
            "avregistrering eller studs",
            "fortfarande prenumerant (inget datum för avregistrering eller studs)",
        ),
    },
}


def rule_reason(rule: Rule, lang: str, period: Period | None = None, forced: bool = False) -> str:
    """ "accounting records (voucher), 7 years after the end of the calendar year in which …"."""
    base = rule.reason_sv if lang == "sv" else rule.reason_en
    if rule.anchor is Anchor.WHILE_FLAGGED:
        return base
    period = period or rule.period
    event = _EVENT[rule.anchor][lang][0]
    if period.is_zero:
        text = f"{base}, {'till' if lang == 'sv' else 'until'} {event}"
    else:
        text = f"{base}, {period.words(lang)} {'efter' if lang == 'sv' else 'after'} {event}"
    if rule.preset_period is not None:
        preset = rule.preset_period.words(lang)
        if forced:
            text += (
                f"; butikens policy under lagens minimum {preset}, forcerad"
                if lang == "sv"
                else f"; shop policy below the statutory minimum of {preset}, forced"
            )
        else:
            text += (
                f"; butikens policy (förval {preset})" if lang == "sv" else f"; shop policy (preset {preset})"
            )
    return text


def unknown_reason(rule: Rule, lang: str, reason: str) -> str:
    missing = _EVENT[rule.anchor][lang][1]
    if rule.anchor is Anchor.UNSUBSCRIBED:  # not a gap in the data: the event has not happened yet
        return (
            f"{missing}: sparas medan prenumerationen gäller; sedan {reason}"
            if lang == "sv"
            else (f"{missing}: kept while subscribed; then {reason}")
        )
    if lang == "sv":
        return f"{missing}: {reason}; sparas tills datumet är känt (kontrollera)"
    return f"{missing}: {reason}; kept until the date is known (check)"


def when(value: date | None, lang: str) -> str:
    if value is None:
        return "sparas tills vidare" if lang == "sv" else "kept, no end date yet"
    return f"sparas till och med {value}" if lang == "sv" else f"kept until {value}"


def retention_period(
    action: str, keep_until: date | str | None, reason: str, reference: str | None, lang: str
) -> str:
    """How long one holding is kept, as the register extract tells the data subject (Art.
    15(1)(d)): "kept until DATE under RULE (reason)", or for a record with no end date yet the
    criterion that ends it (the reason says it: "kept while subscribed; then …")."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    cited = f"{reference} ({reason})" if reference else reason
    sv = lang == "sv"
    if action == "erase":
        return f"raderas nu: {cited}" if sv else f"erased now: {cited}"
    if keep_until:
        until = f"sparas till och med {keep_until}" if sv else f"kept until {keep_until}"
        return f"{until} enligt {cited}" if sv else f"{until} under {cited}"
    return (
        f"sparas utan fast slutdatum, så länge detta gäller: {cited}"
        if sv
        else f"kept with no fixed end date, for as long as this holds: {cited}"
    )
