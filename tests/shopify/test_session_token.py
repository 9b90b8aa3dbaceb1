from __future__ import annotations

import time
from typing import Any

import pytest

from plugin.shopify.session_token import InvalidSessionToken, verify_session_token
from tests.conftest import make_settings
from tests.shopify.tokens import make_session_token

SHOP = "snowdevil.myshopify.com"


def test_valid_token_gives_claims() -> None:
    settings = make_settings()
    token = make_session_token(SHOP, settings, sub="77", sid="s-1")
    claims = verify_session_token(token, settings)
    assert (claims.shop, claims.sub, claims.sid) == (SHOP, "77", "s-1")
    assert claims.exp > time.time()
    assert claims.raw["aud"] == settings.shopify_api_key
    # A "Bearer " prefix (straight from the header) is accepted too.
    assert verify_session_token(f"Bearer {token}", settings).shop == SHOP


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": None},  # shopifyapi alone would accept this one
        {"nbf": None},
        {"exp": "now-120"},
        {"nbf": "now+600"},
        {"aud": "another-app"},
        {"aud": None},
        {"sid": None},
        {"dest": "https://other-shop.myshopify.com"},
        {"iss": "https://evil.example.com/admin", "dest": "https://evil.example.com"},
    ],
)
def test_rejected_tokens(overrides: dict[str, Any]) -> None:
    settings = make_settings()
    # Times relative to when the test runs, not to when it was collected (a long run outlasts 600 s).
    for claim, value in overrides.items():
        if isinstance(value, str) and value.startswith("now"):
            overrides = {**overrides, claim: int(time.time()) + int(value.removeprefix("now"))}
    token = make_session_token(SHOP, settings, **overrides)
    with pytest.raises(InvalidSessionToken) as info:
        verify_session_token(token, settings)
    assert token not in str(info.value)


def test_forged_signature_and_garbage() -> None:
    settings = make_settings()
    forged = make_session_token(SHOP, settings, secret="not-the-secret")
    for token in (forged, "garbage", ""):
        with pytest.raises(InvalidSessionToken) as info:
            verify_session_token(token, settings)
        assert "not-the-secret" not in str(info.value)


def test_fixed_clock() -> None:
    settings = make_settings()
    token = make_session_token(SHOP, settings, exp=1_000_060, nbf=1_000_000, iat=1_000_000)
    assert verify_session_token(token, settings, now=1_000_030).exp == 1_000_060
    with pytest.raises(InvalidSessionToken):
        verify_session_token(token, settings, now=1_000_100)
    with pytest.raises(InvalidSessionToken):
        verify_session_token(token, settings, now=999_900)
