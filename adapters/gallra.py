"""Gallra's own records: its working copy of a request (the encrypted e-mail and phone on the
request row, the raw webhook bodies that brought it, the adapters' exports not yet built into an
extract), a system like any other. Keyed hashes stay: the evidence names the subject by them.

Every shop has it without connecting it (`configurable = False`), and it is erased last
(`erased_last`): the other systems' look-ups, and a data request's extract, need what it keeps.
It reaches Gallra's database through the context (`AdapterContext.own_records`), as Shopify's
adapter reaches Shopify through `admin_client`.

A holding is `request:<id>`. `find` looks the request up (the subject's own, `Subject.request_id`)
and finds it while it still holds any of that; `erase` erases it in one transaction, and a second
call finds nothing left (`already_absent`). Verification is that look-up, right after the erasure.
A retention sweep erases other requests' copies: `lookup_subject` looks up the holding's request.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from adapters.base import (
    Adapter,
    AdapterConfig,
    Outcome,
    OwnRecords,
    PermanentFailure,
    Result,
    Verification,
)
from plugin.holdings import GALLRA, Category, Holding, Subject

PREFIX = "request"


def request_holding(
    request_id: int, last_activity: date | None = None, flags: frozenset[str] = frozenset()
) -> Holding:
    """Gallra's working data of one request, as a holding (no personal data in ref or label)."""
    return Holding(
        system=GALLRA,
        category=Category.APP_REQUEST_DATA,
        ref=f"{PREFIX}:{request_id}",
        label=f"Gallra's working data of request {request_id}",
        last_activity=last_activity,
        flags=flags,
    )


def _request_id(ref: str) -> int | None:
    kind, _, ident = ref.partition(":")
    return int(ident) if kind == PREFIX and ident.isdigit() else None


class Gallra(Adapter[AdapterConfig]):
    name = GALLRA
    title = "Gallra"
    category = Category.APP_REQUEST_DATA
    description = "Gallra's own working copy of a request: contact details, webhook bodies, exports."
    configurable = False
    erased_last = True
    can_export = False  # the request itself is the subject's; the extract is built from it
    verification = Verification(
        how="Gallra's own database no longer holds the request's e-mail, phone, webhook bodies or "
        "unfinished exports"
    )

    def _records(self) -> OwnRecords:
        if self.ctx.own_records is None:
            raise PermanentFailure(GALLRA, "no access to Gallra's own records in this context")
        return self.ctx.own_records

    async def find(self, subject: Subject) -> list[Holding]:
        if subject.request_id is None:
            return []
        held = await self._records().held(subject.request_id)
        return [request_holding(subject.request_id)] if held is not None and held.anything else []

    def lookup_subject(self, subject: Subject, holding: Holding) -> Subject | None:
        request_id = _request_id(holding.ref)
        return None if request_id is None else dataclasses.replace(subject, request_id=request_id)

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        request_id = _request_id(holding.ref)
        if holding.system != GALLRA or request_id is None:
            raise PermanentFailure(GALLRA, f"not a holding of Gallra's own records: {holding.ref}")
        held = await self._records().erase(request_id)
        if held is None or not held.anything:
            return Result(Outcome.ALREADY_ABSENT, detail="nothing of the request left in Gallra's records")
        erased = [
            what
            for what, done in (
                ("e-mail and phone", held.contact),
                (f"{held.webhook_bodies} webhook bodies", held.webhook_bodies),
                (f"{held.export_parts} unfinished exports", held.export_parts),
            )
            if done
        ]
        return Result(Outcome.ERASED, detail="erased from Gallra's records: " + ", ".join(erased))

    async def export(self, subject: Subject) -> dict[str, Any]:
        return {}
