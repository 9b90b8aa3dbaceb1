"""The sweep and a connected newsletter tool: unsubscribed and bounced Mailchimp members, listed by
the adapter's `sweep_holdings()`, planned with the shop's newsletter rules, queued as steps of the
day's sweep request, and carried out by the executor with no customer (hence no address) at all.

The shop is in the Shopify fake (no orders or customers, so every step comes from Mailchimp) and
the members in the Mailchimp fake. Expectations come from the rule definitions
(`tests.sweeps.shopdata.verdict`), not from the planner or the sweep."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from adapters.mailchimp import subscriber_hash
from plugin import connections
from plugin.holdings import Category, Holding
from plugin.models import Request, Shop, Step, Sweep
from plugin.pipelines.worker import Worker
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.shopify import tokens
from plugin.sweeps.run import run_sweep
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import NOW, POLICY_TOML, SHOP, TODAY, TZ, verdict

TOKEN = "shpat_newsletter_shop"
AUDIENCE = "aud1"
# (address, status, last_changed): left long ago, bounced a year ago, left this morning, and one
# still subscribed (not the sweep's business).
MEMBERS = (
    ("left-2022@example.se", "unsubscribed", "2022-06-01T10:00:00+00:00"),
    ("bounced-2025@example.se", "cleaned", "2025-11-01T10:00:00+00:00"),
    ("left-today@example.se", "unsubscribed", "2026-11-22T07:30:00+00:00"),
    ("reader@example.se", "subscribed", "2020-01-01T10:00:00+00:00"),
)


async def newsletter_shop(
    runtime: Runtime, shopify: ShopifyFake, mailchimp: MailchimpFake, *, swept_before: bool = True
) -> None:
    shopify.add_shop(SHOP, country="SE", timezone=TZ, token=TOKEN)
    shopify.bulk_polls_until_done = 0
    for email, status, changed in MEMBERS:
        mailchimp.add_member(AUDIENCE, email, status=status, last_changed=changed)
    await tokens.register_shop(runtime, SHOP, TOKEN, country="SE", timezone=TZ)
    async with runtime.db.transaction() as session:
        stored = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        stored.policy_toml = POLICY_TOML
        await connections.configure(runtime, session, SHOP, "mailchimp", {"api_key": mailchimp.api_key})
        if swept_before:
            session.add(Sweep(shop_domain=SHOP, day="2026-11-01", dry_run=True, status="done"))


def expected() -> dict[str, str]:
    """Member ref → erase | reduce | keep, from the shop's newsletter rules."""
    policy = Policy.from_toml(POLICY_TOML)
    verdicts = {}
    for email, status, changed in MEMBERS:
        if status not in ("unsubscribed", "cleaned"):
            continue
        ref = f"member:{AUDIENCE}:{subscriber_hash(email)}"
        left = date.fromisoformat(changed[:10])
        holding = Holding("mailchimp", Category.NEWSLETTER, ref, "x", last_activity=left, unsubscribed=left)
        verdicts[ref] = verdict(holding, policy, TODAY)[0]
    return verdicts


async def test_unsubscribed_member_past_the_period_is_queued_and_erased_without_an_address(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    mailchimp = MailchimpFake()
    with mailchimp.mocked():
        await newsletter_shop(runtime, shopify_fake, mailchimp)
        want = expected()
        # The rules: gone past the suppression period → erase; inside it → kept (its profile data
        # reduced once unsubscribed); left this morning → kept as it is.
        old, bounced, today = (f"member:{AUDIENCE}:{subscriber_hash(m[0])}" for m in MEMBERS[:3])
        assert want == {old: "erase", bounced: "reduce", today: "keep"}

        report = await run_sweep(runtime, SHOP, now=NOW)

        assert report["status"] == "done" and report["dry_run"] is False
        tally = report["tally"]
        assert tally["tool_records"] == 3
        newsletter = tally["categories"]["newsletter"]
        assert (newsletter["seen"], newsletter["erase"], newsletter["reduce"], newsletter["keep"]) == (
            3,
            1,
            1,
            1,
        )
        async with runtime.db.session() as session:
            steps = (await session.execute(select(Step).where(Step.shop_domain == SHOP))).scalars().all()
            request = (await session.execute(select(Request).where(Request.kind == "sweep"))).scalar_one()
        queued = {s.holding_ref: s.action for s in steps}
        assert queued == {ref: action for ref, action in want.items() if action != "keep"}
        assert all(s.system == "mailchimp" and s.request_id == request.id for s in steps)
        assert request.email_enc is None and request.phone_enc is None  # a sweep has no customer
        assert "@" not in str([s.decision for s in steps])
        # The sweep only read: listed audiences and members, deleted nothing.
        assert mailchimp.count("POST") == 0 and mailchimp.forgotten == set()

        await Worker(runtime).drain(limit=30)

        async with runtime.db.session() as session:
            done = {
                s.holding_ref: (s.state, s.outcome)
                for s in (await session.execute(select(Step).where(Step.shop_domain == SHOP))).scalars()
            }
        assert done[old] == ("done", "erased")
        # The member bounced a year ago is reduced: Mailchimp's reduce is the same permanent
        # deletion, after which Mailchimp keeps only its block on re-importing the address, the
        # suppression entry the rule keeps. Its step carries the rule's fields, all removed.
        assert done[bounced] == ("done", "reduced")
        async with runtime.db.session() as session:
            reduced = (await session.execute(select(Step).where(Step.holding_ref == bounced))).scalar_one()
        assert reduced.action == "reduce" and reduced.decision["still_held"] == []
        assert reduced.decision["removed"] == reduced.decision["reduce_fields"] != []
        forgotten = {member for _list, member in mailchimp.forgotten}
        assert old.rsplit(":", 1)[1] in forgotten
        assert today.rsplit(":", 1)[1] not in forgotten  # kept: inside every period
        assert subscriber_hash("reader@example.se") in mailchimp.audiences[AUDIENCE]
        assert mailchimp.count("GET", "/search-members") == 0  # erased by ref, no address needed


async def test_dry_run_counts_the_members_and_deletes_nothing(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    mailchimp = MailchimpFake()
    with mailchimp.mocked():
        await newsletter_shop(runtime, shopify_fake, mailchimp, swept_before=False)

        report = await run_sweep(runtime, SHOP, now=NOW)  # a new shop's first sweep: a dry run

        assert report["dry_run"] is True
        newsletter = report["tally"]["categories"]["newsletter"]
        assert (newsletter["erase"], newsletter["reduce"], newsletter["keep"]) == (1, 1, 1)
        async with runtime.db.session() as session:
            assert (await session.execute(select(Step.id))).first() is None
        assert mailchimp.count("POST") == 0 and mailchimp.forgotten == set()
