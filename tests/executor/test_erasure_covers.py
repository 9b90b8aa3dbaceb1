"""An adapter's `erasure_covers` is the whole rule: the executor finds the covering step for any
system that declares one, and for no other."""

from __future__ import annotations

import pytest

from adapters import registry
from adapters.base import Adapter, ErasureCover
from adapters.shopify import Shopify
from plugin.executor.dispatch import _cover
from plugin.holdings import Category
from plugin.models import Step
from plugin.runtime import Runtime
from tests.executor.doubles import SHOP, add_request, add_shop

COVERS = ErasureCover(
    by=Category.CUSTOMER_ACCOUNT, refs=("booking:",), why="an account erasure takes the bookings"
)


def step(request_id: int, system: str, action: str, category: Category, ref: str) -> Step:
    return Step(
        request_id=request_id,
        shop_domain=SHOP,
        key=f"{system}:{action}:{ref}",
        system=system,
        action=action,
        category=category.value,
        holding_ref=ref,
    )


async def test_a_declared_cover_is_found_for_any_system(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = type("Acme", (), {"erasure_covers": COVERS})
    plain = type("Plain", (), {"erasure_covers": None})
    classes: dict[str, type] = {"acme": declared, "plain": plain}
    monkeypatch.setattr(registry, "system", lambda name: classes[name])
    await add_shop(runtime)
    request_id = await add_request(runtime)
    async with runtime.db.transaction() as session:
        account = step(request_id, "acme", "erase", Category.CUSTOMER_ACCOUNT, "account:7")
        booking = step(request_id, "acme", "erase", Category.ORDER_CONTACT, "booking:1")
        reduced = step(request_id, "acme", "reduce", Category.ORDER_CONTACT, "booking:2")
        other_ref = step(request_id, "acme", "erase", Category.NEWSLETTER, "list:1")
        other_system = step(request_id, "plain", "erase", Category.ORDER_CONTACT, "booking:1")
        session.add_all([account, booking, reduced, other_ref, other_system])
        await session.flush()
        found = await _cover(session, booking)
        assert found is not None and found[0].id == account.id and found[1] is COVERS
        assert (await _cover(session, reduced)) is not None
        assert await _cover(session, other_ref) is None  # not among the refs it covers
        assert await _cover(session, other_system) is None  # declares nothing
        assert await _cover(session, account) is None  # the covering erasure is a call of its own


async def test_no_covering_step_in_the_request_means_the_step_runs_on_its_own(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "system", lambda name: type("Acme", (), {"erasure_covers": COVERS}))
    await add_shop(runtime)
    request_id = await add_request(runtime)
    async with runtime.db.transaction() as session:
        booking = step(request_id, "acme", "erase", Category.ORDER_CONTACT, "booking:1")
        session.add(booking)
        await session.flush()
        assert await _cover(session, booking) is None


def test_shopify_declares_that_its_customer_erasure_covers_the_orders() -> None:
    covers = Shopify.erasure_covers
    assert covers is not None and covers.by == Category.CUSTOMER_ACCOUNT and covers.refs == ("order:",)
    assert Adapter.erasure_covers is None  # nothing is covered unless an adapter says so
