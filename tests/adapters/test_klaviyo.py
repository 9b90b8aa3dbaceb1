"""Klaviyo adapter against the stateful fake built from provider-apis.md §1.1."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from adapters.base import AuthFailed, Outcome, PermanentFailure, RateLimited
from adapters.klaviyo import REVISION, Klaviyo
from plugin.holdings import Category, Holding, Subject
from tests.adapters.conftest import Waits
from tests.fakes.klaviyo import KlaviyoFake

ANNA = Subject(shop_domain="butik-a.myshopify.com", customer_id=7, email="anna@example.se")


@pytest.fixture
def klaviyo(make_adapter: Any) -> Klaviyo:
    adapter = make_adapter(Klaviyo, api_key="pk_test")
    assert isinstance(adapter, Klaviyo)
    return adapter


async def test_find_returns_one_newsletter_holding_per_profile(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se")
    klaviyo_fake.add_profile("someone@else.se")

    held = await klaviyo.find(ANNA)

    assert [(h.system, h.category, h.ref) for h in held] == [
        ("klaviyo", Category.NEWSLETTER, f"profile:{pid}")
    ]
    assert "anna" not in held[0].label  # labels carry no personal data
    request = klaviyo_fake.calls[0].request
    assert request.headers["revision"] == REVISION
    assert request.headers["Authorization"] == "Klaviyo-API-Key pk_test"
    assert request.url.params["filter"] == 'equals(email,"anna@example.se")'


async def test_find_nothing(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    assert await klaviyo.find(ANNA) == []


async def test_erase_suppresses_then_requests_deletion(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await klaviyo.find(ANNA)

    result = await klaviyo.erase(ANNA, holding)

    assert result.outcome is Outcome.ERASE_REQUESTED
    assert result.provider_ref == klaviyo_fake.suppression_jobs[0]  # the deletion job has no id
    assert "no job id" in result.detail
    assert klaviyo_fake.suppressed == {"anna@example.se"}
    assert klaviyo_fake.deletion_jobs == [{"email": "anna@example.se"}]
    assert pid not in klaviyo_fake.profiles
    paths = [c.path for c in klaviyo_fake.calls]
    assert paths.index("/api/profile-suppression-bulk-create-jobs") < paths.index(
        "/api/data-privacy-deletion-jobs"
    )


async def test_repeated_erase_is_already_absent_and_sends_no_second_job(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await klaviyo.find(ANNA)
    await klaviyo.erase(ANNA, holding)

    again = await klaviyo.erase(ANNA, holding)

    assert again.outcome is Outcome.ALREADY_ABSENT
    assert len(klaviyo_fake.deletion_jobs) == 1


async def test_erase_while_klaviyo_still_deleting_resubmits_harmlessly(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    klaviyo_fake.delete_immediately = False
    klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await klaviyo.find(ANNA)

    first = await klaviyo.erase(ANNA, holding)
    second = await klaviyo.erase(ANNA, holding)
    klaviyo_fake.complete_deletions()

    assert first.outcome is second.outcome is Outcome.ERASE_REQUESTED
    assert klaviyo_fake.profiles == {}
    assert (await klaviyo.erase(ANNA, holding)).outcome is Outcome.ALREADY_ABSENT


async def test_erase_without_profile_is_already_absent(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await klaviyo.find(ANNA)
    klaviyo_fake.profiles.clear()

    result = await klaviyo.erase(ANNA, holding)

    assert result.outcome is Outcome.ALREADY_ABSENT
    assert klaviyo_fake.deletion_jobs == [] and klaviyo_fake.suppression_jobs == []


async def test_not_found_from_the_deletion_job_counts_as_absent(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await klaviyo.find(ANNA)
    not_found = {"errors": [{"id": "x", "status": 400, "code": "not_found"}]}
    klaviyo_fake.fail_next(400, path="/data-privacy-deletion-jobs", body=not_found)

    result = await klaviyo.erase(ANNA, holding)

    assert result.outcome is Outcome.ALREADY_ABSENT


async def test_phone_only_subject_is_deleted_by_phone_number(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    klaviyo_fake.add_profile(None, phone="+46701234567")
    subject = Subject(shop_domain="butik-a.myshopify.com", phone="+46701234567")
    (holding,) = await klaviyo.find(subject)

    result = await klaviyo.erase(subject, holding)

    assert result.outcome is Outcome.ERASE_REQUESTED
    assert klaviyo_fake.deletion_jobs == [{"phone_number": "+46701234567"}]
    assert klaviyo_fake.suppression_jobs == []  # suppression is by e-mail


async def test_suppress_only_mode_keeps_the_profile(make_adapter: Any, klaviyo_fake: KlaviyoFake) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_test", delete=False)
    pid = klaviyo_fake.add_profile("anna@example.se")
    (holding,) = await adapter.find(ANNA)

    result = await adapter.erase(ANNA, holding)

    assert result.outcome is Outcome.SUPPRESSED
    assert pid in klaviyo_fake.profiles and klaviyo_fake.deletion_jobs == []


async def test_throttled_call_waits_retry_after_then_succeeds(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake, waits: Waits
) -> None:
    klaviyo_fake.add_profile("anna@example.se")
    klaviyo_fake.fail_next(429, headers={"Retry-After": "2"})

    held = await klaviyo.find(ANNA)

    assert len(held) == 1
    assert waits.slept == [2.0]


async def test_long_retry_after_is_raised_for_the_executor_not_slept(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake, waits: Waits
) -> None:
    klaviyo_fake.fail_next(429, headers={"Retry-After": "120"})

    with pytest.raises(RateLimited) as raised:
        await klaviyo.find(ANNA)

    assert raised.value.retry_after == 120.0 and raised.value.retryable
    assert waits.slept == []


async def test_auth_failure_names_adapter_and_setting(make_adapter: Any, klaviyo_fake: KlaviyoFake) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_wrong")

    with pytest.raises(AuthFailed) as raised:
        await adapter.check()

    assert "klaviyo" in str(raised.value) and "api_key" in str(raised.value)
    assert "pk_wrong" not in str(raised.value)


async def test_export_lists_profiles_with_their_lists(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se", lists=("Newsletter SE",))

    exported = await klaviyo.export(ANNA)

    assert exported["profiles"][0]["id"] == pid
    assert exported["profiles"][0]["attributes"]["email"] == "anna@example.se"
    assert exported["profiles"][0]["lists"] == ["Newsletter SE"]


async def test_deletion_calls_respect_klaviyos_burst_limit(
    make_adapter: Any, klaviyo_fake: KlaviyoFake
) -> None:
    """Ten erasures at once: the limiter keeps deletion jobs within 3/s, so the fake (which answers
    429 above Klaviyo's documented windows) never sees a call over the limit."""
    import asyncio

    from adapters.http import ProviderHttp, RateLimiter

    adapter = make_adapter(Klaviyo, api_key="pk_test", suppress=False)
    adapter.ctx.http = ProviderHttp(adapter.ctx.http.client, RateLimiter())  # real sleeps
    subjects = [Subject(shop_domain="s", email=f"p{i}@example.se") for i in range(7)]
    for subject in subjects:
        klaviyo_fake.add_profile(subject.email)
    holdings = [(await adapter.find(s))[0] for s in subjects]

    results = await asyncio.gather(*(adapter.erase(s, h) for s, h in zip(subjects, holdings, strict=True)))

    assert {r.outcome for r in results} == {Outcome.ERASE_REQUESTED}
    assert klaviyo_fake.over_limit["deletion"] == 0
    assert len(klaviyo_fake.deletion_jobs) == 7


async def test_profiles_found_by_phone_are_deleted_by_phone(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    by_email = klaviyo_fake.add_profile("anna@example.se")
    by_phone = klaviyo_fake.add_profile(None, phone="+46701234567")
    subject = Subject(shop_domain="s", email="anna@example.se", phone="+46701234567")

    held = {h.ref: h for h in await klaviyo.find(subject)}
    assert set(held) == {f"profile:{by_email}", f"profile:{by_phone}"}

    await klaviyo.erase(subject, held[f"profile:{by_phone}"])

    assert klaviyo_fake.deletion_jobs == [{"phone_number": "+46701234567"}]
    assert set(klaviyo_fake.profiles) == {by_email}


# ----- the retention sweep ------------------------------------------------------------------------

NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # what the executor builds for a sweep


async def test_sweep_lists_suppressed_profiles_with_the_suppression_date(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    left = klaviyo_fake.add_profile("left@example.se")
    klaviyo_fake.suppress(left, "UNSUBSCRIBE", "2022-05-03T10:00:00+00:00")
    bounced = klaviyo_fake.add_profile("bounced@example.se")
    klaviyo_fake.suppress(bounced, "HARD_BOUNCE", "2024-01-09T20:07:38+00:00")
    klaviyo_fake.add_profile("active@example.se")  # not suppressed: not the sweep's business

    swept = {h.ref: h for h in [h async for h in klaviyo.sweep_holdings()]}

    assert set(swept) == {f"profile:{left}", f"profile:{bounced}"}
    gone = swept[f"profile:{left}"]
    assert gone.system == "klaviyo" and gone.category is Category.NEWSLETTER
    assert gone.unsubscribed == date(2022, 5, 3) and "unsubscribe" in gone.flags
    assert gone.last_activity == date(2026, 3, 1)
    hard = swept[f"profile:{bounced}"]
    assert hard.unsubscribed == date(2024, 1, 9) and {"hard_bounce", "bounced"} <= hard.flags
    assert hard.label == "Klaviyo profile (suppressed: hard bounce)"


async def test_sweep_counts_from_the_newest_suppression(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    pid = klaviyo_fake.add_profile("twice@example.se")
    klaviyo_fake.suppress(pid, "UNSUBSCRIBE", "2021-01-01T00:00:00+00:00")
    klaviyo_fake.suppress(pid, "SPAM_COMPLAINT", "2023-06-30T00:00:00+00:00")

    (holding,) = [h async for h in klaviyo.sweep_holdings()]

    assert holding.unsubscribed == date(2023, 6, 30) and "spam_complaint" in holding.flags


async def test_sweep_asks_for_suppressed_profiles_without_addresses(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se", phone="+46701234567")
    klaviyo_fake.suppress(pid)

    swept = [h async for h in klaviyo.sweep_holdings()]

    assert len(swept) == 1 and "@" not in repr(swept) and "4670" not in repr(swept)
    params = klaviyo_fake.calls[0].request.url.params
    assert params["filter"] == (
        "greater-than(subscriptions.email.marketing.suppression.timestamp,1970-01-01T00:00:00Z)"
    )
    assert params["additional-fields[profile]"] == "subscriptions"
    assert params["fields[profile]"] == "updated,subscriptions.email.marketing.suppression"
    assert params["page[size]"] == "100"
    assert klaviyo_fake.calls[0].request.headers["revision"] == REVISION


async def test_sweep_follows_the_cursor_page_by_page(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    pids = [klaviyo_fake.add_profile(f"u{i}@example.se") for i in range(250)]
    for pid in pids:
        klaviyo_fake.suppress(pid)

    swept = [h async for h in klaviyo.sweep_holdings()]

    assert [h.ref for h in swept] == [f"profile:{pid}" for pid in pids]
    cursors = [c.request.url.params.get("page[cursor]") for c in klaviyo_fake.calls]
    assert cursors == [None, "100", "200"]
    # The next link's host is never followed, only its cursor: every call goes to the base URL.
    assert all(
        str(c.request.url).startswith("https://a.klaviyo.com/api/profiles") for c in klaviyo_fake.calls
    )


async def test_swept_profile_is_deleted_by_id_without_an_address(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    pid = klaviyo_fake.add_profile("left@example.se")
    klaviyo_fake.suppress(pid)
    (holding,) = [h async for h in klaviyo.sweep_holdings()]

    result = await klaviyo.erase(NOBODY, holding)

    assert result.outcome is Outcome.ERASE_REQUESTED
    assert klaviyo_fake.deletion_jobs == [{"id": pid}]  # exactly one identifier: the profile id
    assert klaviyo_fake.suppression_jobs == []  # suppressed already; no address to suppress with
    assert pid not in klaviyo_fake.profiles
    body = next(c.request for c in klaviyo_fake.calls if c.path.endswith("/data-privacy-deletion-jobs"))
    assert json.loads(body.content)["data"]["attributes"]["profile"]["data"] == {
        "type": "profile",
        "id": pid,
        "attributes": {},
    }
    again = await klaviyo.erase(NOBODY, holding)
    assert again.outcome is Outcome.ALREADY_ABSENT and len(klaviyo_fake.deletion_jobs) == 1


async def test_subjectless_erase_with_deletion_off_reports_the_existing_suppression(
    make_adapter: Any, klaviyo_fake: KlaviyoFake
) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_test", delete=False)
    pid = klaviyo_fake.add_profile("left@example.se")
    klaviyo_fake.suppress(pid)
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")

    result = await adapter.erase(NOBODY, holding)

    assert result.outcome is Outcome.SUPPRESSED and klaviyo_fake.deletion_jobs == []
    active = klaviyo_fake.add_profile("active@example.se")
    with pytest.raises(PermanentFailure, match="not suppressed"):
        await adapter.erase(NOBODY, Holding("klaviyo", Category.NEWSLETTER, f"profile:{active}", "x"))


async def test_subjectless_erase_rejects_a_foreign_ref(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    with pytest.raises(PermanentFailure):
        await klaviyo.erase(NOBODY, Holding("klaviyo", Category.NEWSLETTER, "member:x:y", "x"))
    assert klaviyo_fake.calls == []


def test_klaviyo_offers_the_sweep() -> None:
    assert Klaviyo.can_sweep is True


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


def _bodies(fake: KlaviyoFake, path: str) -> list[Any]:
    return [json.loads(c.request.content) for c in fake.calls if c.path == path]


async def test_reduce_suppresses_then_deletes_the_profile_by_id(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se", phone="+46701234567")
    (holding,) = await klaviyo.find(ANNA)
    klaviyo_fake.calls.clear()

    result = await klaviyo.reduce(ANNA, holding, MK1_FIELDS)

    assert result.outcome is Outcome.REDUCED and result.removed == MK1_FIELDS and result.still_held == ()
    assert result.provider_ref == klaviyo_fake.suppression_jobs[0]  # the deletion job has no id
    assert "keeps the deleted profile's contact information" in result.detail
    # Exactly: read the profile by id (address and suppressions only), suppress, delete by id.
    assert [(c.request.method, c.path) for c in klaviyo_fake.calls] == [
        ("GET", f"/api/profiles/{pid}"),
        ("POST", "/api/profile-suppression-bulk-create-jobs"),
        ("POST", "/api/data-privacy-deletion-jobs"),
    ]
    lookup = klaviyo_fake.calls[0].request.url.params
    assert lookup["fields[profile]"] == "email,subscriptions.email.marketing.suppression"
    assert lookup["additional-fields[profile]"] == "subscriptions"
    (suppression,) = _bodies(klaviyo_fake, "/api/profile-suppression-bulk-create-jobs")
    assert suppression["data"]["attributes"]["profiles"]["data"] == [
        {"type": "profile", "attributes": {"email": "anna@example.se"}}
    ]
    (deletion,) = _bodies(klaviyo_fake, "/api/data-privacy-deletion-jobs")
    assert deletion["data"] == {
        "type": "data-privacy-deletion-job",
        "attributes": {"profile": {"data": {"type": "profile", "id": pid, "attributes": {}}}},
    }
    assert klaviyo_fake.suppressed == {"anna@example.se"} and pid not in klaviyo_fake.profiles


async def test_repeated_reduce_is_safe(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake) -> None:
    klaviyo_fake.delete_immediately = False  # Klaviyo's deletion runs later
    pid = klaviyo_fake.add_profile("anna@example.se")
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")
    await klaviyo.reduce(ANNA, holding, MK1_FIELDS)

    # Still deleting: suppressed already, so only the job is re-submitted (it deletes nothing twice).
    meanwhile = await klaviyo.reduce(ANNA, holding, MK1_FIELDS)
    klaviyo_fake.complete_deletions()
    done = await klaviyo.reduce(ANNA, holding, MK1_FIELDS)

    assert meanwhile.outcome is Outcome.REDUCED
    assert len(klaviyo_fake.suppression_jobs) == 1 and len(klaviyo_fake.deletion_jobs) == 2
    assert done.outcome is Outcome.ALREADY_ABSENT and len(klaviyo_fake.deletion_jobs) == 2


async def test_reduce_of_a_swept_profile_needs_no_subject_address(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    pid = klaviyo_fake.add_profile("left@example.se")
    klaviyo_fake.suppress(pid, "HARD_BOUNCE")
    (holding,) = [h async for h in klaviyo.sweep_holdings()]

    result = await klaviyo.reduce(NOBODY, holding, MK1_FIELDS)

    assert result.outcome is Outcome.REDUCED
    assert klaviyo_fake.suppression_jobs == []  # suppressed already
    assert klaviyo_fake.deletion_jobs == [{"id": pid}]


async def test_reduce_with_deletion_off_suppresses_and_names_what_klaviyo_still_holds(
    make_adapter: Any, klaviyo_fake: KlaviyoFake
) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_test", delete=False)
    pid = klaviyo_fake.add_profile("anna@example.se")
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")

    result = await adapter.reduce(NOBODY, holding, MK1_FIELDS)

    assert result.outcome is Outcome.SUPPRESSED
    assert result.removed == () and result.still_held == MK1_FIELDS
    assert "still held at the provider: name, phone, address, profile_properties, activity_history" in (
        result.detail
    )
    assert "deletion is off" in result.detail
    assert klaviyo_fake.suppressed == {"anna@example.se"} and klaviyo_fake.deletion_jobs == []
    assert pid in klaviyo_fake.profiles


async def test_reduce_with_deletion_off_and_no_address_fails_visibly(
    make_adapter: Any, klaviyo_fake: KlaviyoFake
) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_test", delete=False)
    pid = klaviyo_fake.add_profile(None, phone="+46701234567")
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")

    with pytest.raises(PermanentFailure, match="no e-mail address to suppress"):
        await adapter.reduce(NOBODY, holding, MK1_FIELDS)
    assert klaviyo_fake.suppression_jobs == [] and klaviyo_fake.deletion_jobs == []


async def test_reduce_of_a_missing_profile_is_already_absent(
    klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake
) -> None:
    holding = Holding("klaviyo", Category.NEWSLETTER, "profile:01GONE", "Klaviyo profile")

    assert (await klaviyo.reduce(NOBODY, holding, MK1_FIELDS)).outcome is Outcome.ALREADY_ABSENT
    assert klaviyo_fake.suppression_jobs == [] and klaviyo_fake.deletion_jobs == []


async def test_reduce_honours_retry_after(klaviyo: Klaviyo, klaviyo_fake: KlaviyoFake, waits: Waits) -> None:
    pid = klaviyo_fake.add_profile("anna@example.se")
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")
    klaviyo_fake.fail_next(429, headers={"Retry-After": "3"})

    result = await klaviyo.reduce(NOBODY, holding, MK1_FIELDS)

    assert result.outcome is Outcome.REDUCED and waits.slept == [3.0]
    klaviyo_fake.fail_next(429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimited) as raised:
        await klaviyo.reduce(NOBODY, holding, MK1_FIELDS)
    assert raised.value.retry_after == 120.0


async def test_reduce_with_a_rejected_key_names_the_setting(
    make_adapter: Any, klaviyo_fake: KlaviyoFake
) -> None:
    adapter = make_adapter(Klaviyo, api_key="pk_wrong")
    pid = klaviyo_fake.add_profile("anna@example.se")
    holding = Holding("klaviyo", Category.NEWSLETTER, f"profile:{pid}", "Klaviyo profile")

    with pytest.raises(AuthFailed, match="api_key") as raised:
        await adapter.reduce(NOBODY, holding, MK1_FIELDS)
    assert "pk_wrong" not in str(raised.value) and pid in klaviyo_fake.profiles


def test_klaviyo_offers_reduce() -> None:
    assert Klaviyo.can_reduce is True
