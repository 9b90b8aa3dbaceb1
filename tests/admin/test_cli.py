"""`gallra requests confirm` and `gallra requests retry`: the admin page's step actions from the
command line, through the same functions, so they record and refuse exactly as the admin does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from plugin import evidence
from plugin.crypto import Vault
from plugin.models import Evidence, OutboxMessage, Request, Step, cell_of, outbox_cell
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer
from tests.admin.seed import Seeded
from tests.conftest import cli_environment, gallra

NOTE = "Anna Svensson at PostNord, by e-mail on 3 May"


@pytest.fixture
def cli_env(runtime: Runtime) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    for name, value in cli_environment(runtime.db.url).items():
        patch.setenv(name, value)
    yield
    patch.undo()


async def _step(runtime: Runtime, step_id: int) -> Step:
    async with runtime.db.session() as session:
        return (await session.execute(select(Step).where(Step.id == step_id))).scalar_one()


async def _evidence(runtime: Runtime, shop: str, kind: str) -> list[dict[str, Any]]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Evidence).where(Evidence.shop_domain == shop, Evidence.kind == kind)
        )
        # As the shop owner reads them: the keyed digests differ per shop by design.
        return [evidence.readable(row) for row in rows.scalars()]


async def test_confirm_records_the_same_evidence_as_the_admin(
    client: httpx.AsyncClient,
    runtime: Runtime,
    vault: Vault,
    shops: tuple[Seeded, Seeded],
    cli_env: None,
) -> None:
    a, b = shops
    async with runtime.db.transaction() as session:
        session.add(
            OutboxMessage(
                shop_domain=SHOP_B, step_id=b.email_step, reference="GAL-B1", status="sent",
                to_enc=vault.encrypt(
                    "dataprotectionofficer@postnord.com", outbox_cell("to_enc", SHOP_B, "GAL-B1")
                ) or "",
                subject_enc=vault.encrypt("s", outbox_cell("subject_enc", SHOP_B, "GAL-B1")) or "",
                body_enc=vault.encrypt("b", outbox_cell("body_enc", SHOP_B, "GAL-B1")) or "",
            )
        )  # fmt: skip

    # Refused like the admin: a note saying who confirmed is required; another shop's step is not found.
    code, output = await gallra("requests", "confirm", str(b.email_step), "--by", "   ")
    assert code == 1 and "a note saying who confirmed" in output
    code, output = await gallra("requests", "confirm", str(b.email_step), "--by", NOTE, "--shop", SHOP_A)
    assert code == 1 and f"no step {b.email_step} in {SHOP_A}" in output
    assert (await _step(runtime, b.email_step)).state == "awaiting_confirmation"

    # By the reference the processor's reply quotes (any case), scoped to its own shop.
    code, output = await gallra("requests", "confirm", "gal-b1", "--by", NOTE, "--shop", SHOP_B)
    assert code == 0, output
    assert f"step {b.email_step} confirmed; request {b.open_request} is" in output
    step = await _step(runtime, b.email_step)
    assert (step.state, step.outcome) == ("done", "confirmed")
    async with runtime.db.session() as session:
        message = (await session.execute(select(OutboxMessage))).scalar_one()
    assert (
        message.status == "confirmed"
        and vault.decrypt(message.note_enc, cell_of(message, "note_enc")) == NOTE
    )

    # The admin confirms the same step of the other shop with the same note: the same evidence.
    done = await client.post(
        f"/admin/api/steps/{a.email_step}/confirm", headers=bearer(runtime, SHOP_A), json={"note": NOTE}
    )
    assert done.status_code == 200
    from_cli = await _evidence(runtime, SHOP_B, "step_confirmed")
    from_admin = await _evidence(runtime, SHOP_A, "step_confirmed")
    assert from_cli == from_admin and from_cli[0]["note_given"] is True
    assert "Anna" not in json.dumps(from_cli)  # the note is kept encrypted, never in evidence

    # Confirming again is refused with the step's state, as the admin's 409 says.
    code, output = await gallra("requests", "confirm", str(b.email_step), "--by", NOTE)
    assert code == 1 and "the step is done" in output
    code, output = await gallra("requests", "confirm", "999999", "--by", NOTE)
    assert code == 1 and "no step 999999" in output


async def test_retry_hands_a_failed_step_back_like_the_admin(
    runtime: Runtime, shops: tuple[Seeded, Seeded], cli_env: None
) -> None:
    a, _ = shops
    code, output = await gallra("requests", "retry", str(a.failed_step), "--shop", SHOP_B)
    assert code == 1 and "no step" in output

    code, output = await gallra("requests", "retry", str(a.failed_step))
    assert code == 0, output
    step = await _step(runtime, a.failed_step)
    assert (step.state, step.attempts) == ("pending", 0)
    async with runtime.db.session() as session:
        status = await session.scalar(select(Request.status).where(Request.id == a.open_request))
    assert f"step {a.failed_step} handed back to the workers; request {a.open_request} is {status}" in output
    (retried,) = await _evidence(runtime, SHOP_A, "step_retried")
    assert retried["system"] == "brevo"

    code, output = await gallra("requests", "retry", str(a.failed_step))
    assert code == 1 and "this needs a step that is failed" in output
