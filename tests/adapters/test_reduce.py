"""`Adapter.reduce` across the catalogue: the newsletter adapters implement it, and every other
adapter keeps the record whole: the default raises `PermanentFailure` before any HTTP call or
e-mail, and never falls back to `erase`."""

from __future__ import annotations

import pytest
import respx

from adapters.base import PermanentFailure
from adapters.registry import catalogue
from plugin.holdings import Holding
from tests.adapters.support import build, subject
from tests.adapters.test_catalogue import MINIMAL, NEWSLETTER_API

REDUCING = NEWSLETTER_API | {"shopify"}  # Shopify: its marketing (newsletter) holding only


def test_the_newsletter_adapters_and_only_they_offer_reduce() -> None:
    assert {name for name, cls in catalogue().items() if cls.can_reduce} == REDUCING


@pytest.mark.parametrize("name", sorted(set(catalogue()) - REDUCING))
@respx.mock(assert_all_mocked=True)
async def test_default_reduce_keeps_the_record_whole_without_calling_anyone(name: str) -> None:
    cls = catalogue()[name]
    adapter, outbox, _ = build(cls, **MINIMAL.get(name, {}))
    holding = Holding(name, cls.category, "shipment:1001:TRACK1", "Order #1001")

    with pytest.raises(PermanentFailure, match="kept whole until its rule ends") as caught:
        await adapter.reduce(subject(("#1001", name, "TRACK1")), holding, ("email", "phone"))

    assert not caught.value.retryable and str(caught.value).startswith(f"{name}:")
    assert respx.calls.call_count == 0 and outbox.sent == []
