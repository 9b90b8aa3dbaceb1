"""Mailchimp adapter against the stateful fake built from provider-apis.md §1.2."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from adapters.base import URL_POLICY, AuthFailed, Outcome, PermanentFailure, ProviderConfig, TemporaryFailure
from adapters.http import ProviderHttp, RateLimiter, UrlPolicy
from adapters.mailchimp import Mailchimp, subscriber_hash
from plugin.holdings import Category, Holding, Subject
from tests.adapters.conftest import Waits
from tests.fakes.mailchimp import MailchimpFake

ANNA = Subject(shop_domain="butik-a.myshopify.com", customer_id=7, email="Anna.Svensson@Example.se")


@pytest.fixture
def mailchimp(make_adapter: Any) -> Mailchimp:
    adapter = make_adapter(Mailchimp, api_key="key-us21")
    assert isinstance(adapter, Mailchimp)
    return adapter


def test_subscriber_hash_matches_the_reference_example() -> None:
    assert subscriber_hash("Anna.Svensson@Example.se") == "a3b6f70fac4de1f284922d93f034655c"


def test_key_without_data_centre_is_rejected_unless_the_server_allows_a_base_url() -> None:
    with pytest.raises(ValueError, match="data-centre"):
        Mailchimp.Config.model_validate({"api_key": "nodc"})
    local = {URL_POLICY: UrlPolicy(custom=True, private=True)}
    config = Mailchimp.Config.model_validate(
        {"api_key": "nodc", "base_url": "http://localhost:9/3.0"}, context=local
    )
    assert isinstance(config, ProviderConfig) and config.root() == "http://localhost:9/3.0"


def test_the_key_names_the_data_centre_host_and_nothing_else() -> None:
    config = Mailchimp.Config.model_validate({"api_key": "key-US21"})
    assert isinstance(config, ProviderConfig) and config.root() == "https://us21.api.mailchimp.com/3.0"
    for key in ("key-us21.evil.example", "key-us21/x", "key-127.0.0.1", "key-"):
        with pytest.raises(ValueError, match="data_centre: must be one host name label"):
            Mailchimp.Config.model_validate({"api_key": key})


async def test_find_lists_every_audience_the_member_is_in(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    mailchimp_fake.add_member("list2", "anna.svensson@example.se", status="unsubscribed")
    mailchimp_fake.add_member("list1", "other@example.se")

    held = await mailchimp.find(ANNA)

    anna = subscriber_hash("anna.svensson@example.se")
    assert sorted((h.system, h.category, h.ref) for h in held) == [
        ("mailchimp", Category.NEWSLETTER, f"member:list1:{anna}"),
        ("mailchimp", Category.NEWSLETTER, f"member:list2:{anna}"),
    ]
    unsubscribed = next(h for h in held if h.ref == f"member:list2:{anna}")
    assert unsubscribed.unsubscribed is not None and "unsubscribed" in unsubscribed.flags
    request = mailchimp_fake.calls[0].request
    assert str(request.url).startswith("https://us21.api.mailchimp.com/3.0/search-members")


async def test_find_nothing(mailchimp: Mailchimp, mailchimp_fake: MailchimpFake) -> None:
    assert await mailchimp.find(ANNA) == []


async def test_erase_deletes_permanently_per_audience_not_archive(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    mailchimp_fake.add_member("list2", "anna.svensson@example.se")
    held = await mailchimp.find(ANNA)

    results = [await mailchimp.erase(ANNA, h) for h in held]

    assert [r.outcome for r in results] == [Outcome.ERASED, Outcome.ERASED]
    assert mailchimp_fake.forgotten == {("list1", member), ("list2", member)}
    assert mailchimp_fake.archived == set()  # never the reversible plain DELETE
    assert mailchimp_fake.count("DELETE") == 0
    assert mailchimp_fake.count("POST", "/actions/delete-permanent") == 2


async def test_repeated_erase_is_already_absent(mailchimp: Mailchimp, mailchimp_fake: MailchimpFake) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    (holding,) = await mailchimp.find(ANNA)
    await mailchimp.erase(ANNA, holding)

    again = await mailchimp.erase(ANNA, holding)

    assert again.outcome is Outcome.ALREADY_ABSENT


async def test_erase_of_a_member_gone_meanwhile_is_already_absent(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    (holding,) = await mailchimp.find(ANNA)
    mailchimp_fake.audiences["list1"].clear()

    assert (await mailchimp.erase(ANNA, holding)).outcome is Outcome.ALREADY_ABSENT


async def test_erase_rejects_a_foreign_holding(mailchimp: Mailchimp) -> None:
    with pytest.raises(PermanentFailure):
        await mailchimp.erase(ANNA, Holding("mailchimp", Category.NEWSLETTER, "profile:1", "x"))
    with pytest.raises(PermanentFailure):
        await mailchimp.erase(ANNA, Holding("mailchimp", Category.NEWSLETTER, "member:list1:short", "x"))


async def test_throttled_then_success(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake, waits: Waits
) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    mailchimp_fake.fail_next(429, times=2)  # Mailchimp sends no Retry-After: backoff with jitter

    held = await mailchimp.find(ANNA)

    assert len(held) == 1
    assert len(waits.slept) == 2
    assert 0 <= waits.slept[0] <= 0.5 and 0 <= waits.slept[1] <= 1.0


async def test_persistent_5xx_is_a_temporary_failure(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake, waits: Waits
) -> None:
    mailchimp_fake.fail_next(503, times=10)

    with pytest.raises(TemporaryFailure) as raised:
        await mailchimp.find(ANNA)

    assert raised.value.retryable
    assert len(waits.slept) == 3  # four attempts in all


async def test_auth_failure_names_adapter_and_setting(
    make_adapter: Any, mailchimp_fake: MailchimpFake
) -> None:
    adapter = make_adapter(Mailchimp, api_key="wrong-us21")

    with pytest.raises(AuthFailed) as raised:
        await adapter.check()

    assert "mailchimp" in str(raised.value) and "api_key" in str(raised.value)
    assert "wrong" not in str(raised.value)


async def test_check_passes_with_the_right_key(mailchimp: Mailchimp, mailchimp_fake: MailchimpFake) -> None:
    mailchimp_fake.add_audience("list1")
    await mailchimp.check()


async def test_export_returns_each_membership(mailchimp: Mailchimp, mailchimp_fake: MailchimpFake) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")

    exported = await mailchimp.export(ANNA)

    assert [m["list_id"] for m in exported["members"]] == ["list1"]
    assert exported["members"][0]["merge_fields"] == {"FNAME": "Anna"}


async def test_concurrent_calls_stay_within_the_connection_pool(
    make_adapter: Any, mailchimp_fake: MailchimpFake
) -> None:
    mailchimp_fake.latency = 0.02
    adapter = make_adapter(Mailchimp, api_key="key-us21", connections=3)
    adapter.ctx.http = ProviderHttp(adapter.ctx.http.client, RateLimiter())
    subjects = [Subject(shop_domain="s", email=f"p{i}@example.se") for i in range(12)]
    for subject in subjects:
        assert subject.email
        mailchimp_fake.add_member("list1", subject.email)

    found = await asyncio.gather(*(adapter.find(s) for s in subjects))

    assert all(len(h) == 1 for h in found)
    assert mailchimp_fake.max_in_flight == 3
    assert mailchimp_fake.over_limit["connections"] == 0


# ----- the retention sweep ------------------------------------------------------------------------

NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # what the executor builds for a sweep


async def test_sweep_lists_unsubscribed_and_cleaned_members_with_their_dates(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    left = mailchimp_fake.add_member(
        "list1", "left@example.se", status="unsubscribed", last_changed="2022-05-03T10:00:00+00:00"
    )
    bounced = mailchimp_fake.add_member(
        "list2", "bounced@example.se", status="cleaned", last_changed="2024-01-09T23:30:00+00:00"
    )
    mailchimp_fake.add_member("list1", "still@example.se")  # subscribed: not the sweep's business
    mailchimp_fake.add_member("list2", "pending@example.se", status="pending")

    swept = [h async for h in mailchimp.sweep_holdings()]

    by_ref = {h.ref: h for h in swept}
    assert set(by_ref) == {f"member:list1:{left}", f"member:list2:{bounced}"}
    gone = by_ref[f"member:list1:{left}"]
    assert gone.category is Category.NEWSLETTER and gone.system == "mailchimp"
    assert gone.unsubscribed == date(2022, 5, 3) and "unsubscribed" in gone.flags
    cleaned = by_ref[f"member:list2:{bounced}"]
    assert cleaned.unsubscribed == date(2024, 1, 9) and {"cleaned", "bounced"} <= cleaned.flags
    assert cleaned.label == "Mailchimp member (cleaned) in audience list2"


async def test_sweep_carries_no_personal_data_and_asks_only_for_ids_and_dates(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    mailchimp_fake.add_member("list1", "Anna.Svensson@Example.se", status="unsubscribed")

    swept = [h async for h in mailchimp.sweep_holdings()]

    assert len(swept) == 1
    assert "@" not in repr(swept) and "anna" not in repr(swept).lower()
    listing = [c.request for c in mailchimp_fake.calls if c.path.endswith("/members")]
    assert listing and all(
        r.url.params["fields"] == "members.id,members.status,members.last_changed,total_items"
        for r in listing
    )
    assert {r.url.params["status"] for r in listing} == {"unsubscribed", "cleaned"}
    assert all(c.status == 200 and b"@" not in c.request.content for c in mailchimp_fake.calls)


async def test_sweep_pages_with_count_and_offset(make_adapter: Any, mailchimp_fake: MailchimpFake) -> None:
    adapter = make_adapter(Mailchimp, api_key="key-us21", page_size=2)
    for i in range(5):
        mailchimp_fake.add_member(
            "list1",
            f"u{i}@example.se",
            status="unsubscribed",
            last_changed=f"2023-01-0{i + 1}T00:00:00+00:00",
        )
    mailchimp_fake.add_member("list1", "c@example.se", status="cleaned")

    swept = [h async for h in adapter.sweep_holdings()]

    assert len(swept) == 6 and len({h.ref for h in swept}) == 6
    pages = [
        (c.request.url.params["status"], c.request.url.params["offset"], c.request.url.params["count"])
        for c in mailchimp_fake.calls
        if c.path.endswith("/members")
    ]
    assert pages == [
        ("unsubscribed", "0", "2"),
        ("unsubscribed", "2", "2"),
        ("unsubscribed", "4", "2"),
        ("cleaned", "0", "2"),
    ]
    # Oldest change first, as asked.
    assert [h.unsubscribed for h in swept[:5]] == sorted(h.unsubscribed for h in swept[:5] if h.unsubscribed)


async def test_sweep_pages_through_audiences_too(make_adapter: Any, mailchimp_fake: MailchimpFake) -> None:
    adapter = make_adapter(Mailchimp, api_key="key-us21", page_size=1)
    for list_id in ("a", "b", "c"):
        mailchimp_fake.add_member(list_id, "x@example.se", status="unsubscribed")

    swept = [h async for h in adapter.sweep_holdings()]

    assert sorted(h.ref.split(":")[1] for h in swept) == ["a", "b", "c"]
    assert mailchimp_fake.count("GET", "/lists") == 3  # one audience a page


async def test_sweep_of_an_account_with_nothing_to_sweep(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    mailchimp_fake.add_audience("empty")
    assert [h async for h in mailchimp.sweep_holdings()] == []


async def test_swept_member_is_erased_by_ref_without_an_address(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    member = mailchimp_fake.add_member("list1", "left@example.se", status="unsubscribed")
    mailchimp_fake.add_member("list2", "left@example.se", status="subscribed")
    (holding,) = [h async for h in mailchimp.sweep_holdings()]

    result = await mailchimp.erase(NOBODY, holding)

    assert result.outcome is Outcome.ERASED and result.provider_ref == "list1"
    assert mailchimp_fake.forgotten == {("list1", member)}  # only the swept audience
    assert mailchimp_fake.count("GET", "/search-members") == 0
    assert (await mailchimp.erase(NOBODY, holding)).outcome is Outcome.ALREADY_ABSENT


async def test_legacy_audience_ref_still_needs_the_address(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    legacy = Holding("mailchimp", Category.NEWSLETTER, "audience:list1", "Mailchimp audience list1")

    with pytest.raises(PermanentFailure, match="no e-mail"):
        await mailchimp.erase(NOBODY, legacy)
    assert (await mailchimp.erase(ANNA, legacy)).outcome is Outcome.ERASED
    assert mailchimp_fake.forgotten == {("list1", member)}


def test_mailchimp_offers_the_sweep() -> None:
    assert Mailchimp.can_sweep is True


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


async def test_reduce_deletes_permanently_per_audience_and_mailchimp_keeps_the_block(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    mailchimp_fake.add_member("list2", "anna.svensson@example.se", status="unsubscribed")
    held = await mailchimp.find(ANNA)
    mailchimp_fake.calls.clear()

    results = [await mailchimp.reduce(ANNA, h, MK1_FIELDS) for h in held]

    assert [r.outcome for r in results] == [Outcome.REDUCED, Outcome.REDUCED]
    assert all(r.removed == MK1_FIELDS and r.still_held == () for r in results)
    assert [r.provider_ref for r in results] == ["list1", "list2"]
    assert "keeps the address blocked from re-import" in results[0].detail
    # Exactly one call per audience: delete-permanent by the member id, no body, no address.
    assert [(c.method, c.path) for c in mailchimp_fake.calls] == [
        ("POST", f"/3.0/lists/{list_id}/members/{member}/actions/delete-permanent")
        for list_id in ("list1", "list2")
    ]
    assert all(c.request.content == b"" for c in mailchimp_fake.calls)
    assert mailchimp_fake.forgotten == {("list1", member), ("list2", member)}
    assert mailchimp_fake.archived == set()  # never the reversible archive
    with pytest.raises(ValueError, match="Forgotten"):  # the block Mailchimp keeps
        mailchimp_fake.add_member("list1", "anna.svensson@example.se")


async def test_repeated_reduce_is_already_absent(mailchimp: Mailchimp, mailchimp_fake: MailchimpFake) -> None:
    mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    (holding,) = await mailchimp.find(ANNA)
    await mailchimp.reduce(ANNA, holding, MK1_FIELDS)

    again = await mailchimp.reduce(ANNA, holding, MK1_FIELDS)

    assert again.outcome is Outcome.ALREADY_ABSENT and again.removed == ()
    assert mailchimp_fake.count("POST", "/delete-permanent") == 2


async def test_reduce_of_a_swept_member_without_an_address(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake
) -> None:
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se", status="cleaned")
    nobody = Subject(shop_domain="butik-a.myshopify.com")
    holding = Holding("mailchimp", Category.NEWSLETTER, f"member:list1:{member}", "Mailchimp member")

    assert (await mailchimp.reduce(nobody, holding, MK1_FIELDS)).outcome is Outcome.REDUCED
    gone = Holding("mailchimp", Category.NEWSLETTER, f"member:list9:{member}", "Mailchimp member")
    assert (await mailchimp.reduce(nobody, gone, MK1_FIELDS)).outcome is Outcome.ALREADY_ABSENT
    legacy = Holding("mailchimp", Category.NEWSLETTER, "audience:list1", "Mailchimp audience")
    with pytest.raises(PermanentFailure, match="no e-mail address"):
        await mailchimp.reduce(nobody, legacy, MK1_FIELDS)
    assert mailchimp_fake.count("PATCH") == 0 and mailchimp_fake.count("DELETE") == 0


async def test_reduce_throttled_then_done(
    mailchimp: Mailchimp, mailchimp_fake: MailchimpFake, waits: Waits
) -> None:
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    holding = Holding("mailchimp", Category.NEWSLETTER, f"member:list1:{member}", "Mailchimp member")
    mailchimp_fake.fail_next(429, headers={"Retry-After": "2"})

    result = await mailchimp.reduce(ANNA, holding, MK1_FIELDS)

    assert result.outcome is Outcome.REDUCED and waits.slept == [2.0]


async def test_reduce_with_a_rejected_key_names_the_setting(
    make_adapter: Any, mailchimp_fake: MailchimpFake
) -> None:
    adapter = make_adapter(Mailchimp, api_key="wrong-us21")
    member = mailchimp_fake.add_member("list1", "anna.svensson@example.se")
    holding = Holding("mailchimp", Category.NEWSLETTER, f"member:list1:{member}", "Mailchimp member")

    with pytest.raises(AuthFailed, match="api_key"):
        await adapter.reduce(ANNA, holding, MK1_FIELDS)
    assert mailchimp_fake.forgotten == set()


def test_mailchimp_offers_reduce() -> None:
    assert Mailchimp.can_reduce is True
