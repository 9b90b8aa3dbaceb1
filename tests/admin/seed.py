"""Fixture rows for the admin tests: a shop with open, overdue and finished requests, a plan with
erased, kept and reduced holdings, a failed step, an e-mail step awaiting confirmation, a
certificate, sweeps, connections and a hash-chained evidence log. Written with the stages' own
functions where they exist (evidence), plain rows otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import (
    AdapterConnection,
    Artifact,
    Request,
    Shop,
    Step,
    Sweep,
    artifact_cell,
    connection_cell,
    request_cell,
    shop_cell,
    utcnow,
)


@dataclass
class Seeded:
    shop: str
    open_request: int
    overdue_request: int
    done_request: int
    failed_step: int
    email_step: int
    certificate: int
    done_steps: int


async def seed_shop(
    db: Database, vault: Vault, shop: str, *, locale: str = "en", now: datetime | None = None
) -> Seeded:
    now = now or utcnow()
    async with db.transaction() as session:
        session.add(
            Shop(
                domain=shop,
                name=shop.split(".")[0],
                country="SE",
                locale=locale,
                timezone="Europe/Stockholm",
                access_token_enc=vault.encrypt("shpat_test", shop_cell("access_token_enc", shop)),
                sweep_hour=3,
            )
        )

        def request(kind: str, received: datetime, status: str, key: str) -> Request:
            row = Request(
                shop_domain=shop,
                kind=kind,
                business_key=key,
                customer_id=1001,
                email_enc=vault.encrypt("jane.doe@example.com", request_cell("email_enc", shop, kind, key)),
                email_hash=vault.email_hash(shop, "jane.doe@example.com"),
                order_ids=[5001, 5002],
                received_at=received,
                due_at=received + timedelta(days=30),
                status=status,
                completed_at=received + timedelta(days=2) if status == "done" else None,
            )
            session.add(row)
            return row

        open_row = request("customer_redact", now - timedelta(days=3), "in_progress", "c1")
        overdue = request("data_request", now - timedelta(days=33), "awaiting", "c2")
        done = request("customer_redact", now - timedelta(days=20), "done", "c3")
        # Older history for the 90-day chart.
        for day in (5, 12, 12, 40, 41, 60, 88):
            request("customer_redact", now - timedelta(days=day, hours=1), "done", f"h{day}-{id(object())}")
        await session.flush()

        def step(req: Request, key: str, system: str, action: str, state: str, **extra: object) -> Step:
            row = Step(
                request_id=req.id,
                shop_domain=shop,
                key=key,
                system=system,
                action=action,
                state=state,
                created_at=req.received_at + timedelta(minutes=5),
                **extra,
            )
            session.add(row)
            return row

        step(
            open_row, "shopify:keep:order:5001", "shopify", "keep", "held",
            category="accounting_record", holding_ref="order:5001",
            decision={
                "action": "keep", "keep_until": "2033-12-31", "rule_id": "SE-1",
                "reference": "Bokföringslagen (1999:1078) 7 kap. 2 §",
                "reason_sv": "räkenskapsinformation, 7 år", "reason_en": "accounting records, 7 years",
                "label": "Order #5001",
            },
        )  # fmt: skip
        step(
            open_row, "shopify:reduce:order:5002", "shopify", "reduce", "done",
            category="order_contact", holding_ref="order:5002", outcome="erased",
            finished_at=now - timedelta(days=2),
            decision={"action": "reduce", "rule_id": "ACC-OPS", "label": "Order #5002"},
        )  # fmt: skip
        step(
            open_row, "klaviyo:erase:profile", "klaviyo", "erase", "done",
            category="newsletter", holding_ref="profile:01HX", outcome="erased", provider_ref="job-77",
            finished_at=now - timedelta(days=2, hours=3),
            decision={"action": "erase", "label": "Newsletter profile"},
        )  # fmt: skip
        failed = step(
            open_row, "brevo:erase:contact", "brevo", "erase", "failed",
            category="newsletter", holding_ref="contact:42", attempts=8, last_error="brevo: HTTP 500",
            finished_at=now - timedelta(days=1),
            decision={"action": "erase", "label": "Brevo contact"},
        )  # fmt: skip
        email = step(
            open_row, "postnord:erase:shipment", "postnord", "erase", "awaiting_confirmation",
            category="shipment", holding_ref="shipment:RR123", outcome="request_sent", provider_ref="GAL-7Q2",
            decision={"action": "erase", "label": "Shipment RR123"},
        )  # fmt: skip
        for index, day in enumerate((1, 5, 5, 30, 70)):
            step(
                done, f"shopify:erase:{index}", "shopify", "erase", "done", outcome="erased",
                finished_at=now - timedelta(days=day), decision={"action": "erase"},
            )  # fmt: skip
        await session.flush()
        certificate = Artifact(
            shop_domain=shop,
            request_id=open_row.id,
            kind="certificate_json",
            content_type="application/json",
            content_enc=vault.encrypt(
                f'{{"certificate": "erasure", "request": {open_row.id}}}',
                artifact_cell(shop, open_row.id, "certificate_json"),
            )
            or "",
            expires_at=now + timedelta(days=30),
        )
        session.add(certificate)
        session.add(
            Sweep(
                shop_domain=shop,
                day=(now - timedelta(days=1)).date().isoformat(),
                dry_run=False,
                status="done",
                started_at=now - timedelta(days=1),
                finished_at=now - timedelta(days=1) + timedelta(minutes=3),
                report={
                    "status": "done",
                    "tally": {
                        "categories": {
                            "accounting_record": {"seen": 120, "erase": 3, "reduce": 0, "keep": 117},
                            "order_contact": {"seen": 120, "erase": 0, "reduce": 9, "keep": 111},
                        }
                    },
                },
            )
        )
        session.add(
            AdapterConnection(
                shop_domain=shop, adapter="brevo", enabled=True, status="error",
                config_enc=vault.encrypt_json({"api_key": "xkeysib-secret"}, connection_cell(shop, "brevo")),
                last_error="brevo: credentials rejected (check api_key)",
                last_checked_at=now - timedelta(hours=2),
            )
        )  # fmt: skip
        session.add(
            AdapterConnection(
                shop_domain=shop, adapter="voyado", enabled=True, status="ok",
                config_enc=vault.encrypt_json(
                    {"api_key": "voyado-secret", "tenant": "seed"},
                    connection_cell(shop, "voyado"),
                ),
                last_checked_at=now - timedelta(hours=2),
            )
        )  # fmt: skip
        await session.flush()
        await evidence.append(session, shop, "request_received", {"kind": "customer_redact"}, open_row.id)
        await evidence.append(session, shop, "plan_made", {"steps": 5}, open_row.id)
        await evidence.append(
            session, shop, "step_done", {"system": "klaviyo", "outcome": "erased"}, open_row.id
        )
        return Seeded(
            shop=shop,
            open_request=open_row.id,
            overdue_request=overdue.id,
            done_request=done.id,
            failed_step=failed.id,
            email_step=email.id,
            certificate=certificate.id,
            done_steps=6,
        )
