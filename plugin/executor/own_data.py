"""Gallra's own database as the Gallra adapter reaches it (`adapters.base.OwnRecords`): what a
request still holds of the subject's personal data, and erasing it. The executor hands it to the
adapters it builds for systems no shop connects (`own_context`); the step then runs like any other.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import AdapterContext, OwnHeld, ShopInfo
from adapters.http import ProviderHttp
from plugin.crypto import DecryptionError
from plugin.executor.records import EXPORT_PART
from plugin.models import REDACTED_BODY, Artifact, Delivery, Request, Shop, delivery_cell
from plugin.runtime import Runtime


class GallraRecords:
    """`OwnRecords` for one shop: the request row's encrypted e-mail and phone, its raw webhook
    bodies and its unfinished export parts."""

    def __init__(self, runtime: Runtime, shop_domain: str) -> None:
        self.runtime = runtime
        self.shop_domain = shop_domain

    async def held(self, request_id: int) -> OwnHeld | None:
        async with self.runtime.db.session() as session:
            return await self._held(session, request_id)

    async def erase(self, request_id: int) -> OwnHeld | None:
        async with self.runtime.db.transaction() as session:
            held = await self._held(session, request_id, lock=True)
            if held is None or not held.anything:
                return held
            shop = self.shop_domain
            await session.execute(
                update(Request)
                .where(Request.id == request_id, Request.shop_domain == shop)
                .values(email_enc=None, phone_enc=None)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(Delivery)
                .where(Delivery.request_id == request_id, Delivery.shop_domain == shop)
                .values(body_enc=self.runtime.vault.encrypt(REDACTED_BODY, delivery_cell(shop)))
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                delete(Artifact).where(
                    Artifact.request_id == request_id,
                    Artifact.shop_domain == shop,
                    Artifact.kind == EXPORT_PART,
                )
            )
            return held

    def _redacted(self, body: str) -> bool:
        """Whether a stored webhook body is the redacted marker (one that cannot be read counts
        as held: it is erased with the rest)."""
        try:
            return self.runtime.vault.decrypt(body, delivery_cell(self.shop_domain)) == REDACTED_BODY
        except DecryptionError:
            return False

    async def _held(self, session: AsyncSession, request_id: int, *, lock: bool = False) -> OwnHeld | None:
        shop = self.shop_domain
        row = select(Request.email_enc, Request.phone_enc).where(
            Request.id == request_id, Request.shop_domain == shop
        )
        contact = (await session.execute(row.with_for_update() if lock else row)).first()
        if contact is None:
            return None
        bodies = await session.execute(
            select(Delivery.body_enc).where(Delivery.request_id == request_id, Delivery.shop_domain == shop)
        )
        unredacted = sum(1 for (body,) in bodies if not self._redacted(body))
        parts = await session.execute(
            select(func.count())
            .select_from(Artifact)
            .where(
                Artifact.request_id == request_id, Artifact.shop_domain == shop, Artifact.kind == EXPORT_PART
            )
        )
        return OwnHeld(
            contact=contact.email_enc is not None or contact.phone_enc is not None,
            webhook_bodies=unredacted,
            export_parts=int(parts.scalar_one()),
        )


def own_context(runtime: Runtime, shop_domain: str, shop: Shop | None) -> AdapterContext:
    """The context of an adapter no shop connects: the shop as Gallra knows it (perhaps not
    installed), and Gallra's own records of it."""
    name = (shop.name if shop is not None else None) or shop_domain
    return AdapterContext(
        shop=ShopInfo(domain=shop_domain, name=name, timezone=shop.timezone if shop is not None else None),
        http=ProviderHttp(runtime.http, runtime.limiter, sleep=runtime.clock.sleep),
        own_records=GallraRecords(runtime, shop_domain),
    )
