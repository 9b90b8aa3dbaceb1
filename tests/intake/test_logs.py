"""No personal data in any log line, at any level, over a full run of intake."""

from __future__ import annotations

import logging

import pytest

from plugin.app import create_app
from plugin.db import Database
from tests.conftest import serving
from tests.intake.conftest import (
    APP_UNINSTALLED,
    CUSTOMER_REDACT,
    DATA_REQUEST,
    SHOP_REDACT,
    body_of,
    build_runtime,
    headers_for,
)

EMAIL = "karin.personal@example.se"
PHONE = "+46 70 555 12 34"
NAME = "Karin Personsdotter"
SECRETS = [EMAIL, PHONE, NAME, "karin", "Personsdotter", "555 12 34", "70 555"]


async def test_no_personal_data_in_logs(
    db: Database, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # DEBUG everywhere, set before the engines exist so SQLAlchemy logs statements and parameters too
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy pins its own root at WARNING
    down = Database(
        "sqlite+aiosqlite:////nonexistent-dir/x.db" if db.is_sqlite else "postgresql://postgres@127.0.0.1:1/x"
    )
    runtimes = [build_runtime(Database(db.url)), build_runtime(down)]
    customer = {
        "id": 4242,
        "email": EMAIL,
        "phone": PHONE,
        "first_name": "Karin",
        "last_name": "Personsdotter",
    }
    deliveries = [
        ("customers/data_request", {**DATA_REQUEST, "customer": customer, "name": NAME}),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": customer}),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": {"email": EMAIL, "phone": PHONE}}),
        ("shop/redact", SHOP_REDACT),
        ("app/uninstalled", {**APP_UNINSTALLED, "shop_owner": NAME, "email": EMAIL, "phone": PHONE}),
        # schema failures whose offending values are personal data
        ("customers/redact", {**CUSTOMER_REDACT, "customer": {"id": EMAIL, "email": PHONE}}),
        ("customers/data_request", {**DATA_REQUEST, "customer": {"id": NAME}}),
    ]
    for runtime in runtimes:
        async with serving(create_app(runtime), base_url="http://t") as client:
            for topic, payload in deliveries:
                body = body_of(payload)
                for _ in range(2):  # stored, then duplicate
                    await client.post(f"/webhooks/{topic}", content=body, headers=headers_for(topic, body))
                await client.post(
                    f"/webhooks/{topic}", content=body, headers=headers_for(topic, body, secret="bad")
                )
                await client.post(
                    f"/webhooks/{topic}", content=body + b"{", headers=headers_for(topic, body + b"{")
                )
            await client.get("/readyz")
        await runtime.http.aclose()
        await runtime.db.dispose()
    messages = [record.getMessage() for record in caplog.records]
    assert any("stored customers/data_request" in m for m in messages)  # the run did log
    assert any("could not store" in m for m in messages)  # including the failures
    assert any(record.name.startswith("sqlalchemy.engine") for record in caplog.records)  # and the SQL
    # On SQLite intake's writer process logs too, to the stderr it shares with this one.
    written = capfd.readouterr().err
    if db.is_sqlite:
        assert "intake write failed: OperationalError" in written  # from the database that is down
    text = "\n".join(messages) + caplog.text + written
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), secret
