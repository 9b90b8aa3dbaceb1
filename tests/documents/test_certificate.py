"""The certificate of erasure in Swedish and English: both render from the same language-free
JSON, the Swedish page has no English labels, a reduced step says what went, what stays, until
when and by which rule, and nothing personal appears beyond the subject's keyed hash and id."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from plugin.documents.certificate import build_certificate, render_certificate_html
from plugin.i18n import shop_language
from plugin.models import Request, Shop, Step

RECEIVED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
EMAIL_HASH = "9f" * 32


def _request(dry_run: bool = False) -> Request:
    return Request(
        id=7,
        shop_domain="demo.myshopify.com",
        kind="customer_redact",
        business_key="k",
        customer_id=4242,
        email_hash=EMAIL_HASH,
        email_enc="ciphertext-never-shown",
        received_at=RECEIVED,
        due_at=datetime(2026, 4, 1, 9, 30, tzinfo=UTC),
        dry_run=dry_run,
    )


def _step(key: str, system: str, action: str, state: str, outcome: str | None, **decision: Any) -> Step:
    label = decision.pop("label", key)
    return Step(
        key=key,
        system=system,
        action=action,
        category=decision.pop("category", "newsletter"),
        state=state,
        outcome=outcome,
        provider_ref=decision.pop("provider_ref", None),
        finished_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC) if state == "done" else None,
        decision={"holding": {"label": label}, **decision},
    )


def steps() -> list[Step]:
    return [
        _step("klaviyo:erase:p1", "klaviyo", "erase", "done", "erase_requested", provider_ref="job-1"),
        _step(
            "mailchimp:reduce:m1",
            "mailchimp",
            "reduce",
            "done",
            "reduced",
            provider_ref="m1",
            label="Mailchimp member (unsubscribed) in audience a1",
            reduce_fields=["name", "phone", "address"],
            removed=["name", "phone", "address"],
            still_held=[],
            keep_until="2028-03-02",
            rule_id="SE-7",
            reference="Marknadsföringslagen 21 §",
            reason_en="Suppression of an objection to marketing",
            reason_sv="Spärr av invändning mot marknadsföring",
        ),
        _step(
            "rule_io:reduce:r1",
            "rule_io",
            "reduce",
            "done",
            "suppressed",
            reduce_fields=["name", "profile_properties"],
            removed=[],
            still_held=["profile_properties"],
            keep_until="2028-03-02",
            rule_id="SE-7",
            reference="Marknadsföringslagen 21 §",
            reason_en="Suppression",
            reason_sv="Spärr",
        ),
        _step(
            "shopify:keep:o1",
            "shopify",
            "keep",
            "held",
            None,
            category="accounting_record",
            label="Order #1001",
            keep_until="2031-12-31",
            rule_id="SE-1",
            reference="Bokföringslagen 7 kap. 2 §",
            reason_en="Bookkeeping",
            reason_sv="Bokföring",
        ),
        _step("postnord:erase:s1", "postnord", "erase", "awaiting_confirmation", "request_sent"),
    ]


def certificate(dry_run: bool = False) -> dict[str, Any]:
    shop = Shop(domain="demo.myshopify.com", name="Demo", country="SE")
    return build_certificate(_request(dry_run), shop, steps(), (12, "ab" * 32))


def _text(html: str) -> str:
    """What a reader sees: tags, code spans and the data's own values stripped."""
    html = re.sub(r"<code>.*?</code>", " ", html, flags=re.S)
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# Every label the English page uses; none may survive into the Swedish one ("System" is Swedish too).
ENGLISH_LABELS = [
    "Certificate of erasure",
    "Shop",
    "request",
    "received",
    "legal deadline",
    "Issued",
    "Subject",
    "Done",
    "Reduced",
    "Kept",
    "Not finished",
    "Evidence",
    "What",
    "Action",
    "Outcome",
    "When",
    "Provider reference",
    "Removed",
    "Kept until",
    "Rule",
    "Why",
    "suppression entry",
    "still held",
    "erased",
    "erasure requested",
    "reduced",
    "suppressed",
    "awaiting confirmation",
    "hash-chained",
    "checks the chain",
    "the rest of the record",
]


def test_json_is_language_free_and_names_no_one() -> None:
    c = certificate()
    text = json.dumps(c, ensure_ascii=False)
    assert "ciphertext-never-shown" not in text and "@" not in text
    assert c["subject"] == {"email_hash": EMAIL_HASH, "phone_hash": None, "customer_id": 4242}
    assert "lang" not in c and "language" not in c
    assert [d["system"] for d in c["done"]] == ["klaviyo"]
    assert [o["system"] for o in c["open"]] == ["postnord"]
    assert [k["rule_id"] for k in c["kept"]] == ["SE-1"]
    # A reduce step is never reported as done (erased): it has its own place.
    mailchimp, rule_io = c["reduced"]
    assert mailchimp["removed"] == ["name", "phone", "address"] and mailchimp["still_held"] == []
    assert (mailchimp["keep_until"], mailchimp["rule_id"]) == ("2028-03-02", "SE-7")
    assert rule_io["outcome"] == "suppressed"
    assert rule_io["removed"] == [] and rule_io["still_held"] == ["profile_properties"]


def test_dry_run_reduce_names_the_rule_fields() -> None:
    step = _step(
        "mailchimp:reduce:m1", "mailchimp", "reduce", "skipped", "would_reduce", reduce_fields=["name"]
    )
    c = build_certificate(_request(dry_run=True), None, [step], None)
    assert c["reduced"][0]["removed"] == ["name"] and c["done"] == []
    sv, en = render_certificate_html(c, "sv"), render_certificate_html(c, "en")
    assert "Inget." in sv and "Nothing." not in sv and "Nothing." in en
    assert "skulle reduceras (testkörning)" in sv and "Testkörning: inget skickades" in sv


def test_a_reduce_step_carried_out_as_an_erasure_is_done() -> None:
    step = _step("klaviyo:reduce:p1", "klaviyo", "reduce", "done", "erased", reduce_fields=["name"])
    c = build_certificate(_request(), None, [step], None)
    assert c["reduced"] == [] and c["done"][0]["outcome"] == "erased"


def test_both_languages_render_the_same_facts() -> None:
    c = certificate()
    sv = render_certificate_html(c, "sv")
    en = render_certificate_html(c, "en")
    assert '<html lang="sv">' in sv and '<html lang="en">' in en
    assert "Raderingsintyg" in sv and "Certificate of erasure" in en
    for page in (sv, en):
        # Dates, rule ids and references exactly as the JSON has them.
        for fact in (
            "2031-12-31",
            "2028-03-02",
            "SE-1",
            "SE-7",
            "Bokföringslagen 7 kap. 2 §",
            "job-1",
            "4242",
        ):
            assert fact in page
        assert EMAIL_HASH in page and "ab" * 32 in page
        assert "ciphertext-never-shown" not in page and "@" not in page
    # The reduced step: what was removed, what stays, until when, by which rule, in each language.
    assert "namn, telefonnummer, adress" in sv and "name, phone number, address" in en
    assert "spärrpost" in sv and "suppression entry" in en
    assert "finns kvar hos leverantören: profiluppgifter" in sv
    assert "still held at the provider: profile properties" in en
    assert "Spärr av invändning mot marknadsföring" in sv and "Suppression of an objection" in en
    assert "Bokföring" in sv and "Bookkeeping" in en and "Bookkeeping" not in sv


@pytest.mark.parametrize("label", ENGLISH_LABELS)
def test_no_english_labels_in_the_swedish_page(label: str) -> None:
    c = certificate(dry_run=True)
    sv_text = _text(render_certificate_html(c, "sv"))
    en_text = _text(render_certificate_html(c, "en"))
    assert label in en_text, f"{label!r} is not an English label of the certificate any more"
    # Data values (holding labels, system names) are the same in both pages; drop them first.
    for value in ("Order #1001", "Mailchimp member (unsubscribed) in audience a1"):
        sv_text = sv_text.replace(value, " ")
    assert not re.search(rf"\b{re.escape(label)}\b", sv_text), f"English {label!r} in the Swedish page"


def test_the_shops_language() -> None:
    assert shop_language(Shop(domain="a", country="SE")) == "sv"
    assert shop_language(Shop(domain="a", country="FI")) == "en"
    assert shop_language(Shop(domain="a", country="SE", locale="en-US")) == "en"
    assert shop_language(Shop(domain="a", country="DE", locale="sv-SE")) == "sv"
    assert shop_language(None) == "en"
