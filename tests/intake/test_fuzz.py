"""Fuzzed deliveries never get a 5xx, and nothing is stored without a valid signature."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from plugin.app import create_app
from plugin.db import Database
from plugin.intake.routes import close as close_intake
from plugin.intake.signature import sign
from plugin.models import Base
from tests.conftest import TEST_SECRET
from tests.intake.conftest import build_runtime, counts

TOPICS = ["customers/data_request", "customers/redact", "shop/redact", "app/uninstalled", "orders/create"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
ids = st.one_of(
    st.integers(min_value=-5, max_value=2**64), st.text(max_size=12), st.none(), st.floats(allow_nan=False)
)
domains = st.one_of(
    st.sampled_from(["fuzz.myshopify.com", "other-shop.myshopify.com", "x.myshopify.com", ""]),
    st.text(max_size=300),
    st.just("a" * 300 + ".myshopify.com"),
)
customers = st.one_of(
    st.none(),
    scalars,
    st.fixed_dictionaries(
        {},
        optional={
            "id": ids,
            "email": st.one_of(st.none(), st.emails(), st.text(max_size=400)),
            "phone": st.one_of(st.none(), st.text(max_size=80)),
            "first_name": st.text(max_size=10),
        },
    ),
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "shop_id": ids,
        "shop_domain": domains,
        "myshopify_domain": domains,
        "customer": customers,
        "orders_to_redact": st.one_of(st.lists(ids, max_size=5), scalars),
        "orders_requested": st.one_of(st.lists(ids, max_size=5), scalars),
        "data_request": st.one_of(st.fixed_dictionaries({}, optional={"id": ids}), scalars),
        "extra": st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    },
)
small_ids = st.integers(min_value=0, max_value=2**40)
good_domains = st.sampled_from(["fuzz.myshopify.com", "other-shop.myshopify.com"])
# Close to the documented shapes, one per topic, so that many examples get past validation and are
# stored (when the topic drawn is the body's own; otherwise they are refused for another topic's keys).
extra = {"extra": st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)}
shop_keys = {"shop_id": small_ids, "shop_domain": good_domains}
customer = st.fixed_dictionaries(
    {"id": st.one_of(small_ids, small_ids.map(str))},
    optional={
        "email": st.one_of(st.none(), st.emails()),
        "phone": st.one_of(st.none(), st.text(max_size=20)),
    },
)
plausible = st.one_of(
    st.fixed_dictionaries(
        {
            **shop_keys,
            "customer": customer,
            "orders_requested": st.lists(small_ids, max_size=5),
            "data_request": st.fixed_dictionaries({"id": small_ids}),
        },
        optional=extra,
    ),
    st.fixed_dictionaries(
        {**shop_keys, "customer": customer, "orders_to_redact": st.lists(small_ids, max_size=5)},
        optional=extra,
    ),
    st.fixed_dictionaries(shop_keys, optional=extra),
    st.fixed_dictionaries(
        {"id": small_ids, "myshopify_domain": good_domains},
        optional={"domain": st.one_of(good_domains, st.text(max_size=30)), **extra},
    ),
)
bodies = st.one_of(
    plausible.map(lambda p: json.dumps(p).encode()),
    payloads.map(lambda p: json.dumps(p).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
)


async def _empty(db: Database) -> None:
    async with db.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_fuzzed_deliveries(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    with asyncio.Runner() as runner:
        db = Database(url)
        runtime = build_runtime(db)
        app = create_app(runtime)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        runner.run(_empty(db))
        statuses: dict[int, int] = {}

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, topic=st.sampled_from(TOPICS), signed=st.booleans(), generic=st.booleans())
        def check(body: bytes, topic: str, signed: bool, generic: bool) -> None:
            headers = {
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": sign(body, TEST_SECRET if signed else "x"),
            }
            path = "/webhooks" if generic else f"/webhooks/{topic}"
            before = runner.run(counts(db))
            response = runner.run(client.post(path, content=body, headers=headers))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.text
            if not signed:
                assert response.status_code in {401, 404}
                assert runner.run(counts(db)) == before
            elif response.status_code != 200:
                assert runner.run(counts(db)) == before

        try:
            check()
        finally:
            runner.run(client.aclose())
            runner.run(close_intake(app.state))  # what the lifespan does on shutdown
            runner.run(runtime.http.aclose())
            runner.run(db.dispose())
    # the fuzzing reached every kind of answer, not only the signature check
    assert {200, 400, 401} <= set(statuses), statuses
