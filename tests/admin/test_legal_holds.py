"""Legal holds in the admin (page with CSRF-checked forms, JSON API) and the CLI: placed, listed and
released through the same actions; a shop sees and releases only its own holds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from plugin.models import Evidence, LegalHold
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page, post_form
from tests.admin.seed import Seeded
from tests.conftest import cli_environment, gallra

REASON = "Reklamationstvist, jurist Lind"


@pytest.fixture
def cli_env(runtime: Runtime) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    for name, value in cli_environment(runtime.db.url).items():
        patch.setenv(name, value)
    yield
    patch.undo()


async def _holds(runtime: Runtime, shop: str) -> list[LegalHold]:
    async with runtime.db.session() as session:
        return list((await session.execute(select(LegalHold).where(LegalHold.shop_domain == shop))).scalars())


async def _kinds(runtime: Runtime, shop: str) -> list[str]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Evidence).where(Evidence.shop_domain == shop, Evidence.kind.like("legal_hold_%"))
        )
        found = list(rows.scalars())
    for row in found:
        # The public part names the hold by id; reason, who and the customer are identifiers only.
        assert "Lind" not in json.dumps(row.payload) and "@" not in json.dumps(row.payload)
    return [row.kind for row in sorted(found, key=lambda r: r.seq)]


async def test_the_owner_places_lists_and_releases_a_hold_in_the_admin(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    placed = await post_form(
        client,
        runtime,
        SHOP_A,
        "/admin/holds",
        {"customer": "kund@example.se", "reason": REASON, "ends_on": "2099-01-31"},
        csrf_from=SHOP_A,
    )
    assert placed.status_code == 303 and "done=hold_placed" in placed.headers["location"]
    page = await get_page(client, runtime, SHOP_A, "/admin/holds")
    assert page.status_code == 200 and REASON in page.text and "kund@example.se" in page.text
    assert "2099-01-31" in page.text

    listed = await client.get("/admin/api/holds", headers=bearer(runtime, SHOP_A))
    [hold] = listed.json()["holds"]
    assert hold["email"] == "kund@example.se" and hold["active"] is True and hold["ends_on"] == "2099-01-31"
    assert hold["placed_by"].startswith("admin user ")

    by_api = await client.post(
        "/admin/api/holds", json={"customer": "gid://shopify/Customer/4242", "reason": "audit"},
        headers=bearer(runtime, SHOP_A),
    )  # fmt: skip
    assert by_api.status_code == 201
    released = await client.post(
        f"/admin/api/holds/{by_api.json()['id']}/release",
        json={"reason": "done"},
        headers=bearer(runtime, SHOP_A),
    )
    assert released.status_code == 200
    again = await client.post(
        f"/admin/api/holds/{by_api.json()['id']}/release", json={}, headers=bearer(runtime, SHOP_A)
    )
    assert again.status_code == 409

    form_release = await post_form(
        client, runtime, SHOP_A, f"/admin/holds/{hold['id']}/release", {"reason": "settled"}, csrf_from=SHOP_A
    )
    assert form_release.status_code == 303
    rows = {row.customer_id: row for row in await _holds(runtime, SHOP_A)}
    assert rows[4242].released_at is not None and rows[None].released_how == "explicit"
    assert await _kinds(runtime, SHOP_A) == [
        "legal_hold_placed",
        "legal_hold_placed",
        "legal_hold_released",
        "legal_hold_released",
    ]
    # Refused: nobody named, no reason, a malformed date.
    for body in ({"reason": "x"}, {"customer": "12"}, {"customer": "12", "reason": "x", "ends_on": "soon"}):
        refused = await client.post("/admin/api/holds", json=body, headers=bearer(runtime, SHOP_A))
        assert refused.status_code == 409, body


async def test_a_form_post_without_the_csrf_field_places_nothing(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    from tests.admin.helpers import token

    response = await client.post(
        "/admin/holds",
        data={"id_token": token(runtime, SHOP_A), "customer": "12", "reason": REASON},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code in (401, 403)
    assert await _holds(runtime, SHOP_A) == []


async def test_shop_a_can_neither_see_nor_release_shop_bs_hold(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    placed = await client.post(
        "/admin/api/holds", json={"customer": "77", "reason": REASON}, headers=bearer(runtime, SHOP_B)
    )
    hold_id = placed.json()["id"]

    listed = await client.get("/admin/api/holds", headers=bearer(runtime, SHOP_A))
    assert listed.json() == {"holds": []}
    page = await get_page(client, runtime, SHOP_A, "/admin/holds")
    assert REASON not in page.text
    api = await client.post(f"/admin/api/holds/{hold_id}/release", json={}, headers=bearer(runtime, SHOP_A))
    assert api.status_code == 404
    form = await post_form(client, runtime, SHOP_A, f"/admin/holds/{hold_id}/release", {}, csrf_from=SHOP_A)
    assert form.status_code == 404
    [hold] = await _holds(runtime, SHOP_B)
    assert hold.released_at is None
    assert await _kinds(runtime, SHOP_A) == []


async def test_the_cli_places_lists_and_releases_holds_of_one_shop(
    runtime: Runtime, shops: tuple[Seeded, Seeded], cli_env: None
) -> None:
    code, out = await gallra(
        "holds", "place", "--shop", SHOP_A, "--customer", "31", "--reason", REASON, "--by", "Eva",
        "--until", "2099-12-31",
    )  # fmt: skip
    assert code == 0, out
    hold_id = int(out.split()[1])
    code, out = await gallra("holds", "list", "--shop", SHOP_A)
    assert code == 0 and "31" in out and "2099-12-31" in out and "active" in out
    assert REASON not in out  # the table leaves the reason out
    code, out = await gallra("holds", "list", "--shop", SHOP_A, "--json")
    assert json.loads(out)[0]["reason"] == REASON

    # Another shop's command cannot release it.
    code, out = await gallra("holds", "release", "--shop", SHOP_B, str(hold_id), "--by", "Mallory")
    assert code == 1 and "no such hold" in out
    code, out = await gallra(
        "holds", "release", "--shop", SHOP_A, str(hold_id), "--by", "Eva", "--reason", "ok"
    )
    assert code == 0, out
    code, out = await gallra("holds", "list", "--shop", SHOP_A)
    assert "released" in out
    code, out = await gallra(
        "holds", "place", "--shop", SHOP_A, "--customer", "", "--reason", "x", "--by", "Eva"
    )
    assert code == 1 and "name the customer" in out
    assert await _kinds(runtime, SHOP_A) == ["legal_hold_placed", "legal_hold_released"]


def test_a_plan_names_the_legal_hold_that_keeps_a_holding() -> None:
    from plugin.admin.render import plan_sentence
    from plugin.models import Step

    step = Step(
        action="keep",
        state="held",
        decision={
            "action": "keep",
            "keep_until": "2027-01-31",
            "rule_id": "HOLD-ORDER_CONTACT",
            "reason_en": "legal hold: kept until the hold is lifted",
            "holding": {"flags": ["legal_hold", "legal_hold:12"]},
        },
    )
    holds = {12: {"hold_id": 12, "reason": REASON, "since": "2026-12-04", "until": "2027-01-31"}}
    assert (
        plan_sentence(step, "en", holds) == f"kept: legal hold — {REASON}, since 2026-12-04, until 2027-01-31"
    )
    open_ended = {12: holds[12] | {"until": None}}
    assert plan_sentence(step, "sv", open_ended).startswith(
        f"sparas: rättslig spärr — {REASON}, sedan 2026-12-04"
    )
    # Without the hold's details (another shop's id, say) the rule's own reason is shown.
    assert "legal hold: kept until the hold is lifted" in plan_sentence(step, "en", {})
