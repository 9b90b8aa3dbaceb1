"""The catalogue as a shop owner meets it: every system of the issue is there, says what it can
do, asks for validated settings with help text, keeps secrets out of sight, and declares limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from adapters._rest import ApiAdapter, safe_reason
from adapters.base import Adapter
from adapters.http import safe_path
from adapters.registry import catalogue
from plugin.cli import _assemble
from plugin.holdings import Category

NEWSLETTER_API = {"klaviyo", "mailchimp", "rule_io", "brevo", "voyado", "omnisend"}
SHIPPING_API = {"shipmondo", "nshift", "sendcloud", "dhl_parcel_de", "budbee"}
EMAIL_CARRIERS = {"postnord", "posti", "schenker", "bring", "instabox", "dhl"}

# The least each API adapter needs, to build its Config; the secret value is the first entry.
MINIMAL: dict[str, dict[str, Any]] = {
    "rule_io": {"api_key": "s3cr3t-value"},
    "brevo": {"api_key": "s3cr3t-value"},
    "voyado": {"api_key": "s3cr3t-value", "tenant": "butik"},
    "omnisend": {"api_key": "s3cr3t-value"},
    "shipmondo": {"api_key": "s3cr3t-value", "api_user": "u"},
    "nshift": {"api_key_secret": "s3cr3t-value", "api_key_id": "k"},
    "sendcloud": {"secret_key": "s3cr3t-value", "public_key": "p"},
    "dhl_parcel_de": {"password": "s3cr3t-value", "api_key": "k", "username": "u"},
    "budbee": {"api_secret": "s3cr3t-value", "api_key": "k"},
}


def test_every_system_of_the_issue_is_in_the_catalogue() -> None:
    found = catalogue()
    assert NEWSLETTER_API | SHIPPING_API | EMAIL_CARRIERS <= set(found)
    for name in NEWSLETTER_API:
        assert found[name].category is Category.NEWSLETTER and found[name].channel == "api"
    for name in SHIPPING_API:
        assert found[name].category is Category.SHIPMENT and found[name].channel == "api"
    for name in EMAIL_CARRIERS:
        assert found[name].category is Category.SHIPMENT and found[name].channel == "email"


@pytest.mark.parametrize("name", sorted(NEWSLETTER_API | SHIPPING_API | EMAIL_CARRIERS))
def test_each_adapter_explains_itself(name: str) -> None:
    cls: type[Adapter] = catalogue()[name]
    assert cls.title and cls.description and cls.name == name
    for field_name, field in cls.Config.model_fields.items():
        assert field.description, f"{name}.{field_name} has no help text"


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_api_adapters_validate_settings_and_hide_secrets(name: str) -> None:
    cls = catalogue()[name]
    assert issubclass(cls, ApiAdapter) and cls.rate_limits, f"{name} declares no rate limit"
    config = cls.Config(**MINIMAL[name])
    secret = getattr(config, next(iter(MINIMAL[name])))
    assert isinstance(secret, SecretStr) and "s3cr3t-value" not in repr(config)
    with pytest.raises(ValidationError):
        cls.Config(**{**MINIMAL[name], "unexpected": 1})
    required = [k for k, f in cls.Config.model_fields.items() if f.is_required()]
    with pytest.raises(ValidationError):
        cls.Config(**{k: v for k, v in MINIMAL[name].items() if k != required[0]})


@pytest.mark.parametrize(
    "name", sorted(EMAIL_CARRIERS | {"nshift", "sendcloud", "dhl_parcel_de", "budbee", "omnisend"})
)
def test_privacy_address_is_editable_and_validated(name: str) -> None:
    cls = catalogue()[name]
    base = MINIMAL.get(name, {})
    config = cls.Config.model_validate({**base, "privacy_email": "dpo@example.se"})
    assert config.privacy_email == "dpo@example.se"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        cls.Config.model_validate({**base, "privacy_email": "not an address"})


def test_provider_errors_and_paths_carry_no_personal_data() -> None:
    echo = httpx.Response(
        400, json={"code": "invalid_parameter", "message": "anna@example.se, +46 70 123 45 67 bad"}
    )
    reason = safe_reason(echo)
    assert (
        reason.startswith("invalid_parameter") and "anna@example.se" not in reason and "123 45" not in reason
    )
    problem = httpx.Response(
        404, json={"errors": [{"status": 404, "title": "Not found", "detail": "x@y.se"}]}
    )
    assert "x@y.se" not in safe_reason(problem) and "Not found" in safe_reason(problem)
    assert (
        safe_path("https://api.brevo.com/v3/contacts/anna%40example.se?identifierType=email_id")
        == "/v3/contacts/…"
    )


def test_gallra_adapters_list_shows_every_adapter_with_what_it_can_do() -> None:
    result = CliRunner().invoke(_assemble(), ["adapters", "list", "--json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.output)}
    for name in NEWSLETTER_API | SHIPPING_API | EMAIL_CARRIERS:
        cls = catalogue()[name]
        assert (rows[name]["channel"], rows[name]["category"]) == (cls.channel, cls.category.value)
        assert (rows[name]["find"], rows[name]["erase"], rows[name]["export"]) == (
            cls.can_find,
            cls.can_erase,
            cls.can_export,
        )
    assert rows["dhl_parcel_de"]["export"] is False and rows["budbee"]["settings"]["privacy_email"]["help"]
