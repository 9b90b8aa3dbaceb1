"""A stateful fake of Shopify's Admin API for tests (respx): shops, customers, orders, fulfillments
with tracking, the cost bucket with THROTTLED answers, bulk operations with JSONL results, the OAuth
token endpoint (token exchange, refresh, authorization code), and a record of every mutation.

It follows Shopify's documented behaviour, not what Gallra happens to send: every GraphQL document
is validated against Shopify's introspected Admin schema (API 2026-01, `shopify-admin-2026-01.graphql`
beside the repository) and *executed* against it, so a misspelt, removed or mistyped field fails a
test with a Shopify-style `errors` answer. Without the schema file it says so loudly and answers from
a pruned copy (tests/fakes/shopify-admin-2026-01.subset.graphql), which validates only the fields
the fake serves.

Use it through the `shopify_fake` fixture (tests/conftest.py), which starts the respx router:

    async def test_something(shopify_fake: ShopifyFake) -> None:
        shop = "shop-a.myshopify.com"
        shopify_fake.add_shop(shop, country="SE", timezone="Europe/Stockholm", token="shpat_a")
        shopify_fake.add_customer(shop, 191167, email="a@example.com", phone="+46701234567")
        shopify_fake.add_order(shop, 299938, customer_id=191167, created_at=datetime(2020, 1, 2, tzinfo=UTC),
                               fulfillments=[{"id": 1, "delivered_at": ..., "tracking": [
                                   {"company": "PostNord", "number": "RR123SE", "url": None}]}])
        ...  # code under test calls https://shop-a.myshopify.com/admin/api/2026-01/graphql.json
        assert shopify_fake.mutations == [(shop, "customerRequestDataErasure", {"customerId": "gid://..."})]

Other respx routes (a newsletter provider, say) go on the same router: `shopify_fake.router.post(url)`.
Knobs: `shopify_fake.fail_next(shop, status=503)` / `fail_next(shop, status=429, headers={"Retry-After":
"1"})` / `fail_next(shop, network=True)`; `shop.bucket` (maximum, restore rate); `bulk_outcome(shop, status=
"FAILED", error_code="ACCESS_DENIED")` or `partial=True`; `bulk_polls_until_done`; `authorize(shop)` →
an authorization code; `clock` (epoch seconds) for token expiry, the bucket and the erasure queue.
Erasures: `shop.erasures` (customer id → `FakeErasure`) is Shopify's queue, due after its documented
delay; `customerCancelDataErasure` cancels only a pending one the app requested;
`request_erasure_in_admin(shop, id)` queues one the merchant started; `carry_out_erasures(shop)`
erases those whose time has come (the customer is gone); `shop.erasure_requested` the pending ones.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import secrets
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import httpx
import jwt
import respx
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast_untyped

SCHEMA_PATH = Path(
    os.environ.get(
        "GALLRA_SHOPIFY_SCHEMA",
        Path(__file__).resolve().parents[3] / "shared" / "reference" / "shopify-admin-2026-01.graphql",
    )
)
SUBSET_PATH = Path(__file__).with_name("shopify-admin-2026-01.subset.graphql")
DEFAULT_CLIENT_ID = "test-client-id"  # tests.conftest.make_settings()
DEFAULT_CLIENT_SECRET = "hush"
BULK_HOST = "https://storage.fake-shopify.test"
MAX_QUERY_COST = 1000
ACCESS_TOKEN_TTL = 3600  # expiring offline tokens live 60 minutes (shopify-platform.md §3.4)
# Not given in the reference; a configurable stand-in for the refresh token's lifetime.
REFRESH_TOKEN_TTL = 90 * 86400
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"


@lru_cache(maxsize=1)
def load_admin_schema() -> GraphQLSchema:
    """Shopify's Admin schema, built once per test run (a few seconds). Without the full file, the
    pruned copy in tests/fakes (only what the fake serves) keeps the fake answering."""
    if SCHEMA_PATH.exists():
        return build_schema(SCHEMA_PATH.read_text(), assume_valid=True)
    print(
        f"\n!!! Shopify Admin schema not found at {SCHEMA_PATH}: the Shopify fake does NOT validate "
        "documents against Shopify's schema; it answers from its pruned copy, which knows only the "
        "fields the fake serves. Set GALLRA_SHOPIFY_SCHEMA to shopify-admin-2026-01.graphql. !!!\n",
        file=sys.stderr,
    )
    warnings.warn("Shopify Admin schema missing: GraphQL documents are not validated", stacklevel=2)
    return build_schema(SUBSET_PATH.read_text(), assume_valid=True)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gid(kind: str, value: int) -> str:
    return f"gid://shopify/{kind}/{value}"


def _legacy(gid_value: Any) -> int | None:
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(gid_value))
    return int(match.group(2)) if match else None


class RecordedMutation(NamedTuple):
    shop: str
    name: str
    variables: dict[str, Any]  # the mutation field's arguments, as Shopify received them


@dataclass
class Bucket:
    """Shopify's cost leaky bucket for one app on one shop (Standard plan: restore 100 points/s)."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    available: float = 2000.0
    updated: float = 0.0

    def refill(self, now: float) -> None:
        if self.updated:
            self.available = min(self.maximum, self.available + (now - self.updated) * self.restore_rate)
        self.updated = now

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": math.floor(self.available),
            "restoreRate": self.restore_rate,
        }


@dataclass
class BulkOperation:
    id: int
    query: str
    status: str = "CREATED"
    polls: int = 0
    lines: list[str] = field(default_factory=list)
    root_count: int = 0
    error_code: str | None = None
    partial: bool = False
    final_status: str = "COMPLETED"  # what polling ends in: COMPLETED, FAILED, EXPIRED, CANCELED
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None


# Shopify's documented delay before it carries out a customer data erasure (shopify-platform.md
# §1.1; help.shopify.com "Processing customer data requests"): 10 days after the request, or, for a
# customer who ordered in the last 180 days, 180 days after their most recent order.
ERASURE_DELAY = timedelta(days=10)
RECENT_ORDER_HOLD = timedelta(days=180)
APP_REQUESTER = "app"  # this fake's app (the one whose token calls it)


@dataclass
class FakeErasure:
    """One pending (or finished) customer data erasure in the shop's queue."""

    requested_at: datetime
    due_at: datetime
    requester: str = APP_REQUESTER  # "app", or "admin" for one the merchant started in Shopify
    state: str = "pending"  # pending | cancelled | erased


@dataclass
class FakeShop:
    domain: str
    id: int
    name: str
    email: str
    country: str
    timezone: str
    currency: str
    plan: str
    # The billing address (Shopify's "legal name of business" is its company).
    company: str | None = None
    address1: str | None = None
    zip: str | None = None
    city: str | None = None
    tokens: dict[str, float | None] = field(default_factory=dict)  # access token → expires (epoch)
    refresh_tokens: dict[str, float] = field(default_factory=dict)  # refresh token → expires (epoch)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    bucket: Bucket = field(default_factory=Bucket)
    bulk: dict[int, BulkOperation] = field(default_factory=dict)
    erasures: dict[int, FakeErasure] = field(default_factory=dict)  # customer id → its erasure
    failures: list[httpx.Response | None] = field(default_factory=list)  # None = network error
    bulk_next: dict[str, Any] = field(default_factory=dict)
    refreshes: int = 0
    exchanges: int = 0

    @property
    def erasure_requested(self) -> set[int]:
        """Customers with an erasure requested and neither cancelled nor carried out."""
        return {customer for customer, erasure in self.erasures.items() if erasure.state == "pending"}


class ShopifyFake:
    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        schema: GraphQLSchema | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.schema = schema or load_admin_schema()
        self.clock = clock
        self.shops: dict[str, FakeShop] = {}
        self.mutations: list[RecordedMutation] = []
        self.requests: list[httpx.Request] = []  # every GraphQL request, to assert headers/versions
        self.throttled = 0  # how many THROTTLED answers were given
        self.bulk_polls_until_done = 1
        self.codes: dict[str, str] = {}  # authorization code → shop

        self._ids = itertools.count(1_000_000)
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.post(
            url__regex=r"^https://(?P<shop>[^/]+)/admin/api/(?P<version>[^/]+)/graphql\.json$"
        ).mock(side_effect=self._graphql)
        self.router.post(url__regex=r"^https://(?P<shop>[^/]+)/admin/oauth/access_token$").mock(
            side_effect=self._access_token
        )
        self.router.get(url__regex=rf"^{re.escape(BULK_HOST)}/bulk/(?P<op>\d+)\.jsonl$").mock(
            side_effect=self._bulk_file
        )

    @property
    def refreshes(self) -> int:
        """Refresh-token grants served, over all shops."""
        return sum(shop.refreshes for shop in self.shops.values())

    @property
    def exchanges(self) -> int:
        """Token exchanges served, over all shops."""
        return sum(shop.exchanges for shop in self.shops.values())

    # ----- setting up state -------------------------------------------------------------------

    @contextmanager
    def mocked(self) -> Iterator[ShopifyFake]:
        with self.router:
            yield self

    def add_shop(
        self,
        domain: str,
        *,
        name: str | None = None,
        email: str = "owner@example.com",
        country: str = "SE",
        timezone: str = "Europe/Stockholm",
        currency: str = "SEK",
        plan: str = "Basic",
        token: str | None = "shpat_test",  # noqa: S107 - a fake shop's fixed token
        token_expires_at: float | None = None,
        shop_id: int | None = None,
        company: str | None = None,
        address1: str | None = None,
        zip: str | None = None,
        city: str | None = None,
    ) -> FakeShop:
        shop = FakeShop(
            domain=domain,
            id=shop_id or next(self._ids),
            name=name or domain.split(".", 1)[0],
            email=email,
            country=country,
            timezone=timezone,
            currency=currency,
            plan=plan,
            company=company,
            address1=address1,
            zip=zip,
            city=city,
        )
        if token:
            shop.tokens[token] = token_expires_at
        self.shops[domain] = shop
        return shop

    def add_customer(
        self,
        domain: str,
        id: int,
        *,
        email: str | None = None,
        phone: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        email_marketing: str = "NOT_SUBSCRIBED",
        sms_marketing: str = "NOT_SUBSCRIBED",
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        note: str | None = None,
        tags: list[str] | None = None,
        locale: str = "en",
        addresses: list[dict[str, Any]] | None = None,
        email_opt_in_level: str | None = None,
        sms_opt_in_level: str | None = None,
        email_marketing_updated_at: datetime | None = None,
        sms_marketing_updated_at: datetime | None = None,
    ) -> dict[str, Any]:
        """`addresses`: MailingAddress fields by their GraphQL names (firstName, address1, zip,
        city, countryCodeV2, phone, ...)."""
        created = created_at or datetime(2020, 1, 1, tzinfo=UTC)
        customer = {
            "id": id,
            "email": email,
            "phone": phone,
            "first_name": first_name,
            "last_name": last_name,
            "email_marketing": email_marketing,
            "email_marketing_updated_at": iso(email_marketing_updated_at),  # as the mutations store it
            "email_opt_in_level": email_opt_in_level,
            "sms_marketing": sms_marketing,
            "sms_marketing_updated_at": iso(sms_marketing_updated_at),  # as the mutations store it
            "sms_opt_in_level": sms_opt_in_level,
            "created_at": created,
            "updated_at": updated_at or created,
            "note": note,
            "tags": list(tags or ()),
            "locale": locale,
            "addresses": list(addresses or ()),
        }
        self.shops[domain].customers[id] = customer
        return customer

    def add_order(
        self,
        domain: str,
        id: int,
        *,
        created_at: datetime,
        customer_id: int | None = None,
        name: str | None = None,
        processed_at: datetime | None = None,
        closed_at: datetime | None = None,
        cancelled_at: datetime | None = None,
        updated_at: datetime | None = None,
        shipping_country: str | None = "SE",
        email: str | None = None,
        fulfillments: list[dict[str, Any]] | None = None,
        phone: str | None = None,
        note: str | None = None,
        tags: list[str] | None = None,
        line_items: list[dict[str, Any]] | None = None,
        shipping_address: dict[str, Any] | None = None,
        billing_address: dict[str, Any] | None = None,
        shipping_method: str | None = None,
        shipping_price: str = "0.00",
        attributes: dict[str, str] | None = None,
        disputes: list[str] | None = None,
        return_status: str = "NO_RETURN",
    ) -> dict[str, Any]:
        """`disputes`: the `DisputeStatus` of each dispute (chargebacks); `return_status` an
        `OrderReturnStatus`; change either in `shop.orders[id]` as Shopify would.
        `fulfillments`: dicts with id, status ("SUCCESS"), created_at, delivered_at and
        tracking = [{"company", "number", "url"}]. `line_items`: dicts with title, quantity,
        price (a decimal string), optional variant and sku; the totals are computed from them
        (tax included at 25 %, as Swedish shops price). Addresses: MailingAddress fields by their
        GraphQL names."""
        shop = self.shops[domain]
        order = {
            "id": id,
            "name": name or f"#{1000 + len(shop.orders) + 1}",
            "customer_id": customer_id,
            "created_at": created_at,
            "processed_at": processed_at or created_at,
            "closed_at": closed_at,
            "cancelled_at": cancelled_at,
            "updated_at": updated_at or closed_at or created_at,
            "shipping_country": shipping_country,
            "email": email,
            "phone": phone,
            "note": note,
            "tags": list(tags or ()),
            "line_items": list(line_items or ()),
            "shipping_address": shipping_address,
            "billing_address": billing_address,
            "shipping_method": shipping_method,
            "shipping_price": shipping_price,
            "attributes": dict(attributes or {}),
            "disputes": list(disputes or ()),
            "return_status": return_status,
            "fulfillments": [
                {
                    "id": f.get("id") or next(self._ids),
                    "status": f.get("status", "SUCCESS"),
                    "created_at": f.get("created_at") or created_at,
                    "delivered_at": f.get("delivered_at"),
                    "in_transit_at": f.get("in_transit_at"),
                    "tracking": list(f.get("tracking", ())),
                }
                for f in (fulfillments or [])
            ],
        }
        shop.orders[id] = order
        return order

    def fail_next(
        self,
        domain: str,
        *,
        status: int = 503,
        headers: dict[str, str] | None = None,
        times: int = 1,
        network: bool = False,
    ) -> None:
        """The next `times` GraphQL calls to the shop fail with `status` (or a connection error)."""
        for _ in range(times):
            self.shops[domain].failures.append(
                None if network else httpx.Response(status, headers=headers, json={"errors": "failure"})
            )

    def bulk_outcome(
        self, domain: str, *, status: str = "COMPLETED", error_code: str | None = None, partial: bool = False
    ) -> None:
        """How the shop's next bulk operation ends (FAILED/EXPIRED/CANCELED, partial data)."""
        self.shops[domain].bulk_next = {"status": status, "error_code": error_code, "partial": partial}

    def authorize(self, domain: str) -> str:
        """The merchant approves the install: the code Shopify puts on the callback URL."""
        code = secrets.token_hex(16)
        self.codes[code] = domain
        return code

    def valid_token(self, domain: str, token: str | None) -> bool:
        shop = self.shops.get(domain)
        if shop is None or token is None or token not in shop.tokens:
            return False
        expires = shop.tokens[token]
        return expires is None or expires > self.clock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def erasure_due(self, shop: FakeShop, customer_id: int, requested_at: datetime) -> datetime:
        """When Shopify carries out an erasure of the customer requested at `requested_at`."""
        last: datetime | None = max(
            (o["created_at"] for o in shop.orders.values() if o["customer_id"] == customer_id), default=None
        )
        soonest = requested_at + ERASURE_DELAY
        if last is None or last + RECENT_ORDER_HOLD <= requested_at:
            return soonest
        return max(soonest, last + RECENT_ORDER_HOLD)

    def carry_out_erasures(self, domain: str, *, all_pending: bool = False) -> list[int]:
        """Shopify's side of the queue (shopify-platform.md §1.1): every pending erasure whose time
        has come by the fake's `clock` (`all_pending`: every pending one, for a test that moved the
        app's clock rather than Shopify's) is carried out. The customer is gone; its orders stay,
        without a customer and without contact details. The ids erased, in order."""
        shop = self.shops[domain]
        now = self.now()
        erased = []
        for customer_id, erasure in sorted(shop.erasures.items()):
            if erasure.state == "pending" and (all_pending or erasure.due_at <= now):
                erasure.state = "erased"
                shop.customers.pop(customer_id, None)
                for order in shop.orders.values():
                    if order["customer_id"] == customer_id:
                        order["customer_id"] = None
                        for key in ("email", "phone", "note", "shipping_address", "billing_address"):
                            if key in order:
                                order[key] = None
                erased.append(customer_id)
        return erased

    def request_erasure_in_admin(self, domain: str, customer_id: int) -> None:
        """The merchant pressed "Erase personal data" in Shopify's admin (not this app)."""
        shop = self.shops[domain]
        now = self.now()
        shop.erasures[customer_id] = FakeErasure(now, self.erasure_due(shop, customer_id, now), "admin")

    def customer(self, domain: str, id: int) -> dict[str, Any]:
        return self.shops[domain].customers[id]

    # ----- the OAuth token endpoint ------------------------------------------------------------

    def _access_token(self, request: httpx.Request, shop: str) -> httpx.Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(request.content or b"{}")
        else:
            body = dict(parse_qsl(request.content.decode()))
        fake = self.shops.get(shop)
        if fake is None:
            return httpx.Response(404, json={"errors": "Not Found"})
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return _oauth_error("invalid_client", "Client credentials are invalid")
        grant = body.get("grant_type")
        if grant == TOKEN_EXCHANGE:
            if (
                body.get("subject_token_type") != ID_TOKEN
                or body.get("requested_token_type") != OFFLINE_TOKEN
            ):
                return _oauth_error("invalid_request", "unsupported token types")
            try:
                claims = jwt.decode(
                    body.get("subject_token", ""),
                    self.client_secret,
                    algorithms=["HS256"],
                    audience=self.client_id,
                    leeway=10,
                    options={"require": ["exp", "nbf", "iss", "dest", "aud", "sid"]},
                )
            except jwt.PyJWTError:
                return _oauth_error("invalid_subject_token", "Session token is invalid")
            if not str(claims["dest"]).endswith(f"//{shop}"):
                return _oauth_error("invalid_subject_token", "Session token is for another shop")
            fake.exchanges += 1
        elif grant == "refresh_token":
            token = body.get("refresh_token")
            expires = fake.refresh_tokens.get(token or "")
            if expires is None or expires <= self.clock():
                return _oauth_error("invalid_grant", "Refresh token is invalid or expired")
            # Rotating: this refresh token is spent once the new pair is issued.
            del fake.refresh_tokens[token or ""]
            fake.refreshes += 1
        elif "code" in body:
            if self.codes.pop(str(body["code"]), None) != shop:
                return _oauth_error(
                    "invalid_request", "The authorization code was not found or was already used"
                )
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        return httpx.Response(200, json=self._issue_token(fake, expiring=str(body.get("expiring")) == "1"))

    def _issue_token(self, shop: FakeShop, *, expiring: bool) -> dict[str, Any]:
        access = "shpat_" + secrets.token_hex(16)
        answer: dict[str, Any] = {
            "access_token": access,
            "scope": "read_customers,write_customers,read_orders",
        }
        now = self.clock()
        if expiring:
            refresh = "shprt_" + secrets.token_hex(16)
            shop.tokens[access] = now + ACCESS_TOKEN_TTL
            shop.refresh_tokens[refresh] = now + REFRESH_TOKEN_TTL
            answer.update(
                expires_in=ACCESS_TOKEN_TTL, refresh_token=refresh, refresh_token_expires_in=REFRESH_TOKEN_TTL
            )
        else:
            shop.tokens[access] = None
        return answer

    # ----- GraphQL -----------------------------------------------------------------------------

    def _graphql(self, request: httpx.Request, shop: str, version: str) -> httpx.Response:
        fake = self.shops.get(shop)
        if fake is None:
            return httpx.Response(404, json={"errors": "Not Found"})
        if fake.failures:
            failure = fake.failures.pop(0)
            if failure is None:
                raise httpx.ConnectError("connection refused (fake)", request=request)
            return failure
        if not self.valid_token(shop, request.headers.get("X-Shopify-Access-Token")):
            return httpx.Response(
                401,
                json={
                    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
                },
            )
        if not re.fullmatch(r"\d{4}-\d{2}|unstable", version):
            return httpx.Response(404, json={"errors": "Not Found"})
        self.requests.append(request)
        body = json.loads(request.content)
        query, variables = body.get("query"), body.get("variables") or {}
        try:
            document = parse(query)
        except GraphQLError as error:
            return _errors([error])
        problems = validate(self.schema, document)
        if problems:
            return _errors(problems)
        operation = _operation(document, body.get("operationName"))
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        is_mutation = operation.operation.value == "mutation"
        root = self.schema.mutation_type if is_mutation else self.schema.query_type
        assert root is not None
        cost = (
            10 * len(_fields(operation.selection_set, fragments))
            if is_mutation
            else _cost(self.schema, operation.selection_set, root, fragments, variables)
        )
        if cost > MAX_QUERY_COST:
            return httpx.Response(
                200,
                json={
                    "errors": [
                        {
                            "message": f"Query cost is {cost}, which exceeds the single query max cost limit "
                            f"({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
                            "for more information on how the cost of a query is calculated.",
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": cost,
                                "maxCost": MAX_QUERY_COST,
                            },
                        }
                    ]
                },
            )
        fake.bucket.refill(self.clock())
        if cost > fake.bucket.available:
            self.throttled += 1
            return httpx.Response(
                200,
                json={
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {"cost": _cost_extension(fake, cost, None)},
                },
            )
        fake.bucket.available -= cost
        context = _Context(fake=self, shop=fake, bulk=False)
        result = execute_sync(
            self.schema,
            document,
            root_value=_Root(self, fake, is_mutation),
            context_value=context,
            variable_values=variables,
            operation_name=body.get("operationName"),
            field_resolver=_resolve,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["extensions"] = {"cost": _cost_extension(fake, cost, cost)}
        return httpx.Response(200, json=answer)

    # ----- bulk operations ---------------------------------------------------------------------

    def _run_bulk(self, shop: FakeShop, query: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [{"field": ["query"], "message": error.message, "code": "INVALID"}]
        problems = validate(self.schema, document)
        if problems:
            return None, [{"field": ["query"], "message": p.message, "code": "INVALID"} for p in problems]
        operation = _operation(document, None)
        if operation.operation.value != "query":
            return None, [{"field": ["query"], "message": "Bulk queries must be queries", "code": "INVALID"}]
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        assert self.schema.query_type is not None
        connections = _connection_depths(
            self.schema, operation.selection_set, self.schema.query_type, fragments, 0
        )
        if not connections:
            return None, [
                {
                    "field": ["query"],
                    "message": "Bulk queries must contain at least one connection.",
                    "code": "INVALID",
                }
            ]
        if len(connections) > 5 or max(connections) > 2:
            return None, [
                {
                    "field": ["query"],
                    "message": "Bulk queries cannot contain more than 5 connections "
                    "or connections nested more than 2 levels deep.",
                    "code": "INVALID",
                }
            ]
        running = [op for op in shop.bulk.values() if op.status in {"CREATED", "RUNNING"}]
        if len(running) >= 5:  # 2026-01+: up to five bulk queries at a time per shop
            return None, [
                {
                    "field": None,
                    "message": "A bulk query operation for this app and shop is already in progress",
                    "code": "OPERATION_IN_PROGRESS",
                }
            ]
        result = execute_sync(
            self.schema,
            document,
            root_value=_Root(self, shop, False),
            context_value=_Context(fake=self, shop=shop, bulk=True),
            field_resolver=_resolve,
        )
        if result.errors:
            return None, [
                {"field": ["query"], "message": e.message, "code": "INVALID"} for e in result.errors
            ]
        op = BulkOperation(id=next(self._ids), query=query)
        op.lines, op.root_count = _jsonl(self.schema, operation.selection_set, result.data or {}, fragments)
        outcome = shop.bulk_next
        shop.bulk_next = {}
        op.error_code = outcome.get("error_code")
        op.partial = bool(outcome.get("partial"))
        op.final_status = outcome.get("status", "COMPLETED")
        shop.bulk[op.id] = op
        return op, []

    def _bulk_view(self, shop: FakeShop, op: BulkOperation, *, advance: bool) -> dict[str, Any]:
        if advance and op.status in {"CREATED", "RUNNING"}:
            op.polls += 1
            if op.polls > self.bulk_polls_until_done:
                op.status = op.final_status
                op.completed_at = datetime.now(UTC)
            else:
                op.status = "RUNNING"
        done = op.status == "COMPLETED"
        partial = op.status == "FAILED" and op.partial
        lines = op.lines if done else op.lines[: len(op.lines) // 2] if partial else []
        return {
            "__typename": "BulkOperation",
            "id": _gid("BulkOperation", op.id),
            "status": op.status,
            "errorCode": op.error_code if op.status == "FAILED" else None,
            "createdAt": iso(op.created_at),
            "completedAt": iso(op.completed_at),
            "objectCount": str(len(lines)),
            "rootObjectCount": str(op.root_count if done else 0),
            "fileSize": str(sum(len(line) + 1 for line in lines)) if lines else None,
            "url": f"{BULK_HOST}/bulk/{op.id}.jsonl" if done and lines else None,
            "partialDataUrl": f"{BULK_HOST}/bulk/{op.id}.jsonl" if partial and lines else None,
            "query": op.query,
            "type": "QUERY",
        }

    def _bulk_file(self, request: httpx.Request, op: str) -> httpx.Response:
        for shop in self.shops.values():
            found = shop.bulk.get(int(op))
            if found is not None:
                lines = found.lines if found.status == "COMPLETED" else found.lines[: len(found.lines) // 2]
                return httpx.Response(200, content="".join(line + "\n" for line in lines).encode())
        return httpx.Response(404, text="NoSuchKey")


# ----- execution helpers -------------------------------------------------------------------------


@dataclass
class _Context:
    fake: ShopifyFake
    shop: FakeShop
    bulk: bool


def _resolve(source: Any, info: Any, **args: Any) -> Any:
    """Dict sources; a callable value is a field with arguments (connections, root fields)."""
    key = info.field_name
    value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
    if callable(value):
        return value(info, **args)
    return value


class _Root:
    def __init__(self, fake: ShopifyFake, shop: FakeShop, mutation: bool) -> None:
        self._fake, self._store, self._mutation = fake, shop, mutation

    def _record(self, info: Any, args: dict[str, Any]) -> None:
        self._fake.mutations.append(RecordedMutation(self._store.domain, info.field_name, args))

    # queries
    def shop(self, info: Any) -> dict[str, Any]:
        return _shop_node(self._store)

    def customer(self, info: Any, id: str) -> dict[str, Any] | None:
        found = self._store.customers.get(_legacy(id) or -1)
        return _customer_node(self._store, found) if found else None

    def customers(self, info: Any, **args: Any) -> dict[str, Any]:
        items = sorted(self._store.customers.values(), key=lambda c: c["id"])
        items = _search(items, args.get("query"))
        return _connection(info, [_customer_node(self._store, c) for c in items], args)

    def orders(self, info: Any, **args: Any) -> dict[str, Any]:
        items = sorted(self._store.orders.values(), key=lambda o: (o["created_at"], o["id"]))
        items = _search(items, args.get("query"))
        return _connection(info, [_order_node(self._store, o) for o in items], args)

    def nodes(self, info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for value in ids:
            kind = value.split("/")[3] if value.count("/") >= 4 else ""
            legacy = _legacy(value) or -1
            if kind == "Order" and legacy in self._store.orders:
                found.append(_order_node(self._store, self._store.orders[legacy]))
            elif kind == "Customer" and legacy in self._store.customers:
                found.append(_customer_node(self._store, self._store.customers[legacy]))
            else:
                found.append(None)
        return found

    def bulkOperation(self, info: Any, id: str) -> dict[str, Any] | None:
        op = self._store.bulk.get(_legacy(id) or -1)
        return self._fake._bulk_view(self._store, op, advance=True) if op else None

    # mutations
    def customerEmailMarketingConsentUpdate(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        self._record(info, {"input": input})
        return self._consent(input, "emailMarketingConsent", "email")

    def customerSmsMarketingConsentUpdate(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        self._record(info, {"input": input})
        return self._consent(input, "smsMarketingConsent", "sms")

    def _consent(self, input: dict[str, Any], key: str, channel: str) -> dict[str, Any]:
        customer = self._store.customers.get(_legacy(input["customerId"]) or -1)
        consent = input[key]
        if customer is None:
            return _user_errors(["input", "customerId"], "Customer not found", "INVALID")
        if channel == "email" and not customer["email"]:
            return _user_errors(["input", "customerId"], "Customer must have an email address", "INVALID")
        if channel == "sms" and not customer["phone"]:
            return _user_errors(["input", "customerId"], "Customer must have a phone number", "INVALID")
        if consent["marketingState"] not in {"SUBSCRIBED", "UNSUBSCRIBED", "PENDING"}:
            return _user_errors(
                ["input", key, "marketingState"], "Marketing state cannot be set to this value", "INVALID"
            )
        customer[f"{channel}_marketing"] = consent["marketingState"]
        customer[f"{channel}_marketing_updated_at"] = consent.get("consentUpdatedAt") or iso(
            datetime.now(UTC)
        )
        return {"customer": _customer_node(self._store, customer), "userErrors": []}

    def customerRequestDataErasure(self, info: Any, customerId: str) -> dict[str, Any]:
        self._record(info, {"customerId": customerId})
        legacy = _legacy(customerId) or -1
        if legacy not in self._store.customers:
            return {
                "customerId": None,
                "userErrors": [
                    {"field": ["customerId"], "message": "Customer does not exist", "code": "DOES_NOT_EXIST"}
                ],
            }
        self._fake.carry_out_erasures(self._store.domain)
        now = self._fake.now()
        pending = self._store.erasures.get(legacy)
        if pending is None or pending.state != "pending":
            due = self._fake.erasure_due(self._store, legacy, now)
            self._store.erasures[legacy] = FakeErasure(now, due)
        return {"customerId": customerId, "userErrors": []}

    def customerCancelDataErasure(self, info: Any, customerId: str) -> dict[str, Any]:
        """Only while the erasure is pending (before Shopify carries it out), and since 31 May 2025
        only by the app that requested it."""
        self._record(info, {"customerId": customerId})
        self._fake.carry_out_erasures(self._store.domain)
        legacy = _legacy(customerId) or -1
        erasure = self._store.erasures.get(legacy)

        def refused(message: str, code: str) -> dict[str, Any]:
            return {
                "customerId": None,
                "userErrors": [{"field": ["customerId"], "message": message, "code": code}],
            }

        if erasure is None or erasure.state != "pending":
            if legacy not in self._store.customers and (erasure is None or erasure.state != "erased"):
                return refused("Customer does not exist", "DOES_NOT_EXIST")
            return refused("Customer's data is not scheduled for erasure", "NOT_BEING_ERASED")
        if erasure.requester != APP_REQUESTER:
            return refused(
                "Only the original requester can cancel this data erasure", "UNAUTHORIZED_CANCELLATION"
            )
        erasure.state = "cancelled"
        return {"customerId": customerId, "userErrors": []}

    def bulkOperationRunQuery(self, info: Any, query: str, groupObjects: bool) -> dict[str, Any]:
        self._record(info, {"query": query, "groupObjects": groupObjects})
        op, problems = self._fake._run_bulk(self._store, query)
        if op is None:
            return {"bulkOperation": None, "userErrors": problems}
        return {"bulkOperation": self._fake._bulk_view(self._store, op, advance=False), "userErrors": []}

    def __getattr__(self, name: str) -> Any:
        def unsupported(info: Any, **args: Any) -> Any:
            raise GraphQLError(
                f"the Shopify fake does not implement {name}; add it to tests/fakes/shopify.py"
            )

        return unsupported


def _user_errors(field_path: list[str], message: str, code: str) -> dict[str, Any]:
    return {"customer": None, "userErrors": [{"field": field_path, "message": message, "code": code}]}


COUNTRY_NAMES = {"SE": "Sweden", "FI": "Finland", "NO": "Norway", "DK": "Denmark", "DE": "Germany"}


def _shop_node(shop: FakeShop) -> dict[str, Any]:
    return {
        "__typename": "Shop",
        "id": _gid("Shop", shop.id),
        "name": shop.name,
        "email": shop.email,
        "contactEmail": shop.email,
        "myshopifyDomain": shop.domain,
        "ianaTimezone": shop.timezone,
        "currencyCode": shop.currency,
        "plan": {
            "displayName": shop.plan,
            "publicDisplayName": shop.plan,
            "partnerDevelopment": False,
            "shopifyPlus": shop.plan.lower().startswith("shopify plus"),
        },
        "shopAddress": {
            "id": _gid("ShopAddress", shop.id),
            "countryCodeV2": shop.country,
            "countryCode": shop.country,
            "country": COUNTRY_NAMES.get(shop.country, shop.country),
            "company": shop.company,
            "address1": shop.address1,
            "address2": None,
            "zip": shop.zip,
            "city": shop.city,
            "province": None,
            "coordinatesValidated": False,
            "formatted": [],
        },
    }


def _customer_node(shop: FakeShop, c: dict[str, Any]) -> dict[str, Any]:
    orders = sorted(
        (o for o in shop.orders.values() if o["customer_id"] == c["id"]), key=lambda o: o["created_at"]
    )

    def customer_orders(info: Any, **args: Any) -> dict[str, Any]:
        items = _search(orders, args.get("query"))
        return _connection(info, [_order_node(shop, o) for o in items], args)

    return {
        "__typename": "Customer",
        "id": _gid("Customer", c["id"]),
        "legacyResourceId": str(c["id"]),
        "firstName": c["first_name"],
        "lastName": c["last_name"],
        "displayName": " ".join(p for p in (c["first_name"], c["last_name"]) if p) or (c["email"] or ""),
        "email": c["email"],
        "phone": c["phone"],
        "defaultEmailAddress": (
            {
                "emailAddress": c["email"],
                "marketingState": c["email_marketing"]
                if c["email_marketing"]
                in {"INVALID", "NOT_SUBSCRIBED", "PENDING", "SUBSCRIBED", "UNSUBSCRIBED"}
                else "NOT_SUBSCRIBED",
                "marketingUpdatedAt": c["email_marketing_updated_at"],
                "marketingOptInLevel": c["email_opt_in_level"],
            }
            if c["email"]
            else None
        ),
        "defaultPhoneNumber": (
            {
                "phoneNumber": c["phone"],
                "marketingState": c["sms_marketing"],
                "marketingUpdatedAt": c["sms_marketing_updated_at"],
                "marketingOptInLevel": c["sms_opt_in_level"],
            }
            if c["phone"]
            else None
        ),
        "emailMarketingConsent": {
            "marketingState": c["email_marketing"],
            "consentUpdatedAt": c["email_marketing_updated_at"],
        }
        if c["email"]
        else None,
        "smsMarketingConsent": {
            "marketingState": c["sms_marketing"],
            "consentUpdatedAt": c["sms_marketing_updated_at"],
        }
        if c["phone"]
        else None,
        "numberOfOrders": str(len(orders)),
        "canDelete": not orders,
        "createdAt": iso(c["created_at"]),
        "updatedAt": iso(c["updated_at"]),
        "lastOrder": _order_node(shop, orders[-1]) if orders else None,
        "orders": customer_orders,
        "note": c["note"],
        "tags": c["tags"],
        "locale": c["locale"],
        "state": "ENABLED",
        "amountSpent": _money(
            sum((_order_total(o) for o in orders if not o["cancelled_at"]), Decimal(0)), shop.currency
        ),
        "addressesV2": lambda info, **args: _connection(
            info, [_mailing_address(a, f"c{c['id']}-{n}") for n, a in enumerate(c["addresses"])], args
        ),
    }


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": f"{amount:.2f}", "currencyCode": currency}


def _money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
    money = _money(amount, currency)
    return {"shopMoney": money, "presentmentMoney": money}


def _subtotal(o: dict[str, Any]) -> Decimal:
    return sum((Decimal(str(i["price"])) * int(i["quantity"]) for i in o["line_items"]), Decimal(0))


def _order_total(o: dict[str, Any]) -> Decimal:
    return _subtotal(o) + Decimal(o["shipping_price"])


def _mailing_address(a: dict[str, Any], key: str) -> dict[str, Any]:
    fields = ("firstName", "lastName", "company", "address1", "address2", "zip", "city", "province")
    address: dict[str, Any] = {f: a.get(f) for f in fields}
    address["name"] = " ".join(p for p in (a.get("firstName"), a.get("lastName")) if p) or None
    address["country"] = a.get("country")
    address["countryCodeV2"] = a.get("countryCodeV2")
    address["countryCode"] = a.get("countryCodeV2")
    address["phone"] = a.get("phone")
    address["id"] = f"gid://shopify/MailingAddress/{key}"
    return address


def _order_node(shop: FakeShop, o: dict[str, Any]) -> dict[str, Any]:
    customer = shop.customers.get(o["customer_id"]) if o["customer_id"] is not None else None
    address = (
        {
            "id": _gid("MailingAddress", o["id"]),
            "countryCodeV2": o["shipping_country"],
            "countryCode": o["shipping_country"],
        }
        if o["shipping_country"]
        else None
    )
    currency = shop.currency
    subtotal, total = _subtotal(o), _order_total(o)
    if o["shipping_address"] is not None:
        full = {"countryCodeV2": o["shipping_country"], **o["shipping_address"]}
        address = _mailing_address(full, f"s{o['id']}")
    return {
        "__typename": "Order",
        "phone": o["phone"],
        "note": o["note"],
        "tags": o["tags"],
        "customerLocale": customer["locale"] if customer else None,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "FULFILLED" if o["fulfillments"] else "UNFULFILLED",
        "customAttributes": [{"key": k, "value": v} for k, v in o["attributes"].items()],
        "billingAddress": _mailing_address(o["billing_address"], f"b{o['id']}")
        if o["billing_address"]
        else None,
        "shippingLine": {
            "title": o["shipping_method"],
            "originalPriceSet": _money_bag(Decimal(o["shipping_price"]), currency),
        }
        if o["shipping_method"]
        else None,
        "subtotalPriceSet": _money_bag(subtotal, currency),
        "totalShippingPriceSet": _money_bag(Decimal(o["shipping_price"]), currency),
        "totalTaxSet": _money_bag((total * Decimal("0.2")).quantize(Decimal("0.01")), currency),
        "totalDiscountsSet": _money_bag(Decimal(0), currency),
        "totalPriceSet": _money_bag(total, currency),
        "lineItems": lambda info, **args: _connection(
            info,
            [
                {
                    "id": f"gid://shopify/LineItem/{o['id']}{n}",
                    "title": i["title"],
                    "variantTitle": i.get("variant"),
                    "sku": i.get("sku"),
                    "quantity": int(i["quantity"]),
                    "originalUnitPriceSet": _money_bag(Decimal(str(i["price"])), currency),
                    "originalTotalSet": _money_bag(Decimal(str(i["price"])) * int(i["quantity"]), currency),
                }
                for n, i in enumerate(o["line_items"])
            ],
            args,
        ),
        "id": _gid("Order", o["id"]),
        "legacyResourceId": str(o["id"]),
        "name": o["name"],
        "createdAt": iso(o["created_at"]),
        "processedAt": iso(o["processed_at"]),
        "closedAt": iso(o["closed_at"]),
        "cancelledAt": iso(o["cancelled_at"]),
        "updatedAt": iso(o["updated_at"]),
        "email": o["email"],
        "currencyCode": shop.currency,
        "customer": (lambda info: _customer_node(shop, customer)) if customer else None,
        "shippingAddress": address,
        "returnStatus": o.get("return_status", "NO_RETURN"),
        "disputes": [
            {
                "id": _gid("OrderDisputeSummary", o["id"] * 100 + n),
                "initiatedAs": "CHARGEBACK",
                "status": status,
            }
            for n, status in enumerate(o.get("disputes") or ())
        ],
        "fulfillments": lambda info, first=None: [
            {
                "__typename": "Fulfillment",
                "id": _gid("Fulfillment", f["id"]),
                "legacyResourceId": str(f["id"]),
                "name": f"{o['name']}-F{n + 1}",
                "status": f["status"],
                "displayStatus": "DELIVERED" if f["delivered_at"] else "FULFILLED",
                "createdAt": iso(f["created_at"]),
                "updatedAt": iso(f["delivered_at"] or f["created_at"]),
                "deliveredAt": iso(f["delivered_at"]),
                "inTransitAt": iso(f["in_transit_at"]),
                "trackingInfo": lambda info, first=None, f=f: [
                    {"company": t.get("company"), "number": t.get("number"), "url": t.get("url")}
                    for t in f["tracking"][: first or None]
                ],
            }
            for n, f in enumerate(o["fulfillments"][: first or None])
        ],
    }


def _connection(info: Any, nodes: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    bulk = info.context.bulk
    first, last = args.get("first"), args.get("last")
    if not bulk and first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if (first or 0) > 250 or (last or 0) > 250:
        raise GraphQLError("The maximum page size is 250")
    if args.get("reverse"):
        nodes = list(reversed(nodes))
    indexed = list(enumerate(nodes))
    if args.get("after"):
        start = _cursor_index(args["after"]) + 1
        indexed = [pair for pair in indexed if pair[0] >= start]
    if args.get("before"):
        stop = _cursor_index(args["before"])
        indexed = [pair for pair in indexed if pair[0] < stop]
    has_next = has_previous = False
    if first is not None and not bulk:
        has_next = len(indexed) > first
        indexed = indexed[:first]
    if last is not None and not bulk:
        has_previous = len(indexed) > last
        indexed = indexed[-last:] if last else []
    edges = [{"cursor": _cursor(i), "node": node} for i, node in indexed]
    return {
        "edges": edges,
        "nodes": [node for _, node in indexed],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous or bool(args.get("after")),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last_index": index}).encode()).decode()


def _cursor_index(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["last_index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError("Invalid cursor") from exc


_TERM = re.compile(r"(\w+):(<=|>=|<|>|=)?('[^']*'|\"[^\"]*\"|\S+)")


def _search(items: list[dict[str, Any]], query: str | None) -> list[dict[str, Any]]:
    """Shopify's search syntax, the part Gallra uses: `field:value`, `field:<date` ... joined by AND."""
    if not query:
        return items
    for name, op, raw in _TERM.findall(query):
        value = raw.strip("'\"")
        items = [item for item in items if _matches(item, name, op or "=", value)]
    return items


def _matches(item: dict[str, Any], name: str, op: str, value: str) -> bool:
    if name in {"id", "customer_id"}:
        have = item.get(name)
        return have is not None and _compare(int(have), op, int(value))
    if name in {"created_at", "updated_at", "processed_at"}:
        have = item.get(name)
        if have is None:
            return False
        wanted = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if wanted.tzinfo is None:
            wanted = wanted.replace(tzinfo=UTC)
        return _compare(have, op, wanted)
    return True  # Shopify ignores search terms it does not know


def _compare(have: Any, op: str, want: Any) -> bool:
    return bool(
        {"=": have == want, "<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]
    )


# ----- document analysis: cost, bulk shape, JSONL ------------------------------------------------


def _operation(document: Any, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for op in operations:
        if name is None or (op.name and op.name.value == name):
            return op
    raise GraphQLError(f"Unknown operation named '{name}'.")


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    found: list[FieldNode] = []
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found.extend(_fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            found.extend(_fields(fragments[selection.name.value].selection_set, fragments))
    return found


def _field_type(schema: GraphQLSchema, parent: Any, node: FieldNode) -> Any:
    if node.name.value.startswith("__"):
        return None
    candidates = (
        [parent] if isinstance(parent, GraphQLObjectType) else list(schema.get_possible_types(parent))
    )
    for candidate in candidates:
        definition = candidate.fields.get(node.name.value)
        if definition is not None:
            return get_named_type(definition.type)
    # A field inside an inline fragment on a narrower type (`... on Order`) of an interface.
    for named in schema.type_map.values():
        if isinstance(named, GraphQLObjectType) and parent in named.interfaces:
            definition = named.fields.get(node.name.value)
            if definition is not None:
                return get_named_type(definition.type)
    return None


def _argument(node: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, variables)
    return None


def _cost(
    schema: GraphQLSchema,
    selection_set: SelectionSetNode | None,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """Shopify's documented calculation, simplified: an object costs 1, a connection 2 plus its page
    size times the cost of one node, scalars and enums nothing."""
    total = 0
    for node in _fields(selection_set, fragments):
        kind = _field_type(schema, parent, node)
        if kind is None or is_leaf_type(kind) or kind.name == "PageInfo":
            continue
        inner = _cost(schema, node.selection_set, kind, fragments, variables)
        if kind.name.endswith("Connection"):
            size = _argument(node, "first", variables) or _argument(node, "last", variables) or 0
            total += 2 + int(size) * inner
        elif kind.name.endswith("Edge"):
            total += inner
        elif node.name.value == "nodes" and parent.name.endswith("Connection"):
            total += 1 + inner
        else:
            total += 1 + inner
    return total


def _cost_extension(shop: FakeShop, requested: int, actual: int | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": shop.bucket.status(),
    }


def _connection_depths(
    schema: GraphQLSchema,
    selection_set: SelectionSetNode | None,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    depth: int,
) -> list[int]:
    depths: list[int] = []
    for node in _fields(selection_set, fragments):
        kind = _field_type(schema, parent, node)
        if kind is None or is_leaf_type(kind):
            continue
        here = depth + 1 if kind.name.endswith("Connection") else depth
        if here != depth:
            depths.append(here)
        depths.extend(_connection_depths(schema, node.selection_set, kind, fragments, here))
    return depths


def _jsonl(
    schema: GraphQLSchema,
    selection_set: SelectionSetNode,
    data: dict[str, Any],
    fragments: dict[str, FragmentDefinitionNode],
) -> tuple[list[str], int]:
    """Bulk results as Shopify writes them: one line per node of each connection, children of nested
    connections as their own lines with `__parentId`, everything else inline."""
    lines: list[str] = []
    roots = 0
    assert schema.query_type is not None
    for node in _fields(selection_set, fragments):
        kind = _field_type(schema, schema.query_type, node)
        key = node.alias.value if node.alias else node.name.value
        if kind is not None and kind.name.endswith("Connection"):
            for item, item_type, item_selection in _connection_nodes(
                schema, node, kind, data.get(key), fragments
            ):
                roots += 1
                _emit(schema, item, item_type, item_selection, fragments, None, lines)
    return lines, roots


def _connection_nodes(
    schema: GraphQLSchema,
    node: FieldNode,
    kind: Any,
    value: dict[str, Any] | None,
    fragments: dict[str, FragmentDefinitionNode],
) -> Iterator[tuple[dict[str, Any], Any, SelectionSetNode | None]]:
    if not value:
        return
    for child in _fields(node.selection_set, fragments):
        key = child.alias.value if child.alias else child.name.value
        child_type = _field_type(schema, kind, child)
        if child.name.value == "nodes":
            for item in value.get(key) or ():
                yield item, child_type, child.selection_set
        elif child.name.value == "edges":
            for edge in value.get(key) or ():
                for inner in _fields(child.selection_set, fragments):
                    if inner.name.value == "node":
                        inner_key = inner.alias.value if inner.alias else "node"
                        yield edge[inner_key], _field_type(schema, child_type, inner), inner.selection_set


def _emit(
    schema: GraphQLSchema,
    item: dict[str, Any],
    item_type: Any,
    selection: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    parent_id: str | None,
    lines: list[str],
) -> None:
    line = dict(item)
    children: list[tuple[dict[str, Any], Any, SelectionSetNode | None]] = []
    for child in _fields(selection, fragments):
        kind = _field_type(schema, item_type, child)
        key = child.alias.value if child.alias else child.name.value
        if kind is not None and kind.name.endswith("Connection"):
            children.extend(_connection_nodes(schema, child, kind, line.pop(key, None), fragments))
    if parent_id is not None:
        line["__parentId"] = parent_id
    lines.append(json.dumps(line, separators=(",", ":")))
    for child_item, child_type, child_selection in children:
        _emit(schema, child_item, child_type, child_selection, fragments, item.get("id"), lines)


def _errors(problems: list[GraphQLError]) -> httpx.Response:
    return httpx.Response(200, json={"errors": [p.formatted for p in problems]})


def _oauth_error(code: str, description: str) -> httpx.Response:
    return httpx.Response(400, json={"error": code, "error_description": description})
