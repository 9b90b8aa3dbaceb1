"""The documented payloads of the topics Gallra receives, as pydantic models.

The topic of a delivery comes from an unsigned header, so the signed body must prove it belongs
to that topic: a body of one topic is refused under another. Two rules do that:

- Each topic requires what only it documents: `customers/redact` and `customers/data_request` a
  `customer` with an id or an e-mail, `customers/data_request` also `data_request.id`, the
  compliance topics `shop_id` and `shop_domain`, `app/uninstalled` a `*.myshopify.com` domain,
  `customers/merge` two different customer GIDs and a `status`.
- Each topic refuses the keys that identify the *other* topics (`_OTHERS`): `shop/redact` carries
  only the shop, so a body with `customer`, `orders_to_redact`, `data_request` or
  `orders_requested` is not a `shop/redact`; `customers/redact` refuses `data_request` and
  `orders_requested`; `app/uninstalled` (the REST Shop resource) refuses `shop_id`/`shop_domain`;
  `customers/merge` refuses every key above.
  A refused key may be present as `null` (which carries nothing).

Why a deny-list of other topics' keys rather than `extra="forbid"`: Shopify adds fields to
payloads without notice (`X-Shopify-API-Version` changes the serialisation), and a forbidden
unknown key would answer 400 to every genuine delivery until Gallra is updated; Shopify retries
8 times in 4 hours and then gives up, so the request would be lost. Unknown keys are ignored here
(and kept in the stored raw body); the keys that are known to mean another topic are refused.
A new key that some future topic uses to tell itself apart would have to be added to `_OTHERS`.

IDs are numeric legacy IDs; Shopify's older docs wrote them as strings, so they are coerced to
int. `email`, `phone` and the order lists may be missing or null. Validation errors are reduced to
field paths and error kinds, never the offending values, which may be an e-mail or a phone number.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Shopify's own shop-domain check (shopify-app-js shop-validator, shopify_python_api shop_url).
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]\.myshopify\.com$")

# Big enough for any Shopify ID, small enough for a BIGINT column.
ShopifyId = Annotated[int, Field(ge=0, le=2**63 - 1)]


class PayloadError(ValueError):
    """The body is not what the topic documents. The message is short and holds no values."""


def _shop_domain(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 255 or not SHOP_DOMAIN.match(value):
        raise ValueError("not a *.myshopify.com domain")
    return value


def is_shop_domain(value: str | None) -> bool:
    """Whether `value` is a valid `*.myshopify.com` domain (as `_shop_domain` would accept it)."""
    if not value:
        return False
    value = value.strip().lower()
    return len(value) <= 255 and SHOP_DOMAIN.match(value) is not None


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Customer(_Payload):
    id: ShopifyId | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _named(self) -> Customer:
        # Shopify documents records with only an e-mail; one with neither names nobody.
        if self.id is None and not self.email:
            raise ValueError("customer has no id or e-mail")
        return self


class DataRequestRef(_Payload):
    id: ShopifyId


class _ShopPayload(_Payload):
    shop_id: ShopifyId
    shop_domain: str
    # The REST Shop resource's key (app/uninstalled): never in a compliance body.
    myshopify_domain: None = None

    _domain = field_validator("shop_domain")(_shop_domain)


class CustomersDataRequest(_ShopPayload):
    customer: Customer
    data_request: DataRequestRef
    orders_requested: list[ShopifyId] | None = None
    # customers/redact's key
    orders_to_redact: None = None


class CustomersRedact(_ShopPayload):
    customer: Customer
    orders_to_redact: list[ShopifyId] | None = None
    # customers/data_request's keys
    data_request: None = None
    orders_requested: None = None


class ShopRedact(_ShopPayload):
    """Only the shop: any key of the customer topics means the body is not a shop redaction."""

    customer: None = None
    orders_to_redact: None = None
    data_request: None = None
    orders_requested: None = None


class ShopResource(_Payload):
    """The REST Shop resource. Only the identifiers matter; the rest (name, e-mail) is ignored.

    The shop is `myshopify_domain`, or `domain` when that is itself a `*.myshopify.com` domain (a
    shop without a custom domain); a custom `domain` names no shop Gallra knows. Never a header."""

    id: ShopifyId | None = None
    myshopify_domain: str | None = None
    domain: str | None = None
    # The compliance topics' keys
    shop_id: None = None
    shop_domain: None = None
    customer: None = None
    orders_to_redact: None = None
    data_request: None = None
    orders_requested: None = None

    _domain = field_validator("myshopify_domain")(lambda v: None if v is None else _shop_domain(v))

    @model_validator(mode="after")
    def _names_a_shop(self) -> ShopResource:
        if self.myshopify_domain is None and not is_shop_domain(self.domain):
            raise ValueError("no *.myshopify.com domain")
        return self

    @property
    def shop(self) -> str:
        """The shop the signed body names (validated above)."""
        if self.myshopify_domain is not None:
            return self.myshopify_domain
        assert self.domain is not None
        return self.domain.strip().lower()


class AppUninstalled(ShopResource):
    """`app/uninstalled`: the REST Shop resource."""


class ShopUpdate(ShopResource):
    """`shop/update`: the REST Shop resource, as `app/uninstalled` sends it, and refused on the same
    grounds (the compliance topics' keys, no `*.myshopify.com` domain). The two topics share a body,
    so neither can be told from the other by it: a `shop/update` body under `app/uninstalled` only
    makes a claim that Shopify must confirm (`plugin.pipelines.uninstall`), and the reverse only
    makes Gallra read the shop's details again. Nothing of this body is stored outside the
    delivery: the details are read from the Admin API (`plugin.shopify.details`)."""


CUSTOMER_GID = re.compile(r"^gid://shopify/Customer/([0-9]{1,19})$")


def _customer_gid(value: str) -> str:
    match = CUSTOMER_GID.match(value.strip())
    if match is None or int(match.group(1)) > 2**63 - 1:
        raise ValueError("not a gid://shopify/Customer/<id>")
    return value.strip()


class CustomersMerge(_Payload):
    """`customers/merge` (https://shopify.dev/docs/api/webhooks, "customers/merge: Sample Payload";
    scope `read_customer_merge`): the customer kept and the one merged into it (deleted), as
    GIDs, Shopify's job id, the merge's `status` and its `errors`. The body names no shop: the
    shop is the `X-Shopify-Shop-Domain` header's (`plugin.intake.mapping.shop_domain_of`).
    `errors` may quote a customer's name: it is never read, only kept in the encrypted body."""

    admin_graphql_api_customer_kept_id: str
    admin_graphql_api_customer_deleted_id: str
    admin_graphql_api_job_id: str | None = Field(default=None, max_length=255)
    status: str = Field(min_length=1, max_length=32)
    # The other topics' keys
    shop_id: None = None
    shop_domain: None = None
    myshopify_domain: None = None
    customer: None = None
    orders_to_redact: None = None
    data_request: None = None
    orders_requested: None = None

    _ids = field_validator("admin_graphql_api_customer_kept_id", "admin_graphql_api_customer_deleted_id")(
        _customer_gid
    )

    @model_validator(mode="after")
    def _two_customers(self) -> CustomersMerge:
        if self.kept_id == self.deleted_id:
            raise ValueError("kept and deleted customer are the same")
        return self

    @property
    def kept_id(self) -> int:
        return int(self.admin_graphql_api_customer_kept_id.rsplit("/", 1)[1])

    @property
    def deleted_id(self) -> int:
        return int(self.admin_graphql_api_customer_deleted_id.rsplit("/", 1)[1])

    @property
    def completed(self) -> bool:
        """Whether Shopify reports the merge as done. The statuses are the Admin schema's
        `CustomerMergeRequestStatus` (REQUESTED, IN_PROGRESS, COMPLETED, FAILED), which the
        webhook sample writes in lower case (`failed`); only a completed merge changes anything."""
        return self.status.strip().lower() == "completed"


Payload = CustomersDataRequest | CustomersRedact | ShopRedact | AppUninstalled | ShopUpdate | CustomersMerge

MODELS: dict[str, type[Payload]] = {
    "customers/data_request": CustomersDataRequest,
    "customers/redact": CustomersRedact,
    "shop/redact": ShopRedact,
    "app/uninstalled": AppUninstalled,
    "shop/update": ShopUpdate,
    "customers/merge": CustomersMerge,
}
TOPICS = frozenset(MODELS)


def _reason(topic: str, error: ValidationError) -> str:
    """What is wrong with the body: not JSON, not an object, or its first bad field and error kind."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    if first["type"] == "json_invalid":
        return "body is not valid JSON"
    if first["type"] == "model_type" and not first["loc"]:
        return "body is not a JSON object"
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "none_required":
        # A key of another topic: say so plainly, it is the re-topiced body this check exists for.
        return f"body does not fit {topic}: {where}: belongs to another topic"
    if first["type"] == "value_error":
        # Raised by this module's own validators, whose messages hold no values.
        why = first["msg"].removeprefix("Value error, ")
        return f"body does not fit {topic}: {where}: value_error ({why})"
    return f"body does not fit {topic}: {where}: {first['type']}"


def parse(topic: str, body: bytes) -> Payload:
    """Parse a verified body for `topic`, or raise PayloadError with a short, value-free reason.

    pydantic reads the JSON itself (one pass in Rust, no intermediate dicts): less than half the
    time of `json.loads` and validating its result, on every delivery."""
    if not body.strip():
        raise PayloadError("empty body")
    try:
        return MODELS[topic].model_validate_json(body)
    except ValidationError as exc:
        raise PayloadError(_reason(topic, exc)) from None
