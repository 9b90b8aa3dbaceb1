"""The Admin API operations Gallra needs, as typed functions returning `plugin.shopify.records`.

Every document here is validated against Shopify's 2026-01 schema by the tests (and executed by the
Shopify fake). Deprecated fields are avoided: `Customer.email`/`phone` → `defaultEmailAddress` /
`defaultPhoneNumber`, `Shop.billingAddress` → `shopAddress`, `ShopPlan.displayName` →
`publicDisplayName`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from plugin.shopify.client import AdminClient, UserErrors
from plugin.shopify.records import (
    CustomerRecord,
    FulfillmentRecord,
    OrderRecord,
    ShopRecord,
    TrackingInfo,
    gid,
    legacy_id,
)

# Fulfillments and tracking are lists (not connections) on Order; 10 of each is far above what a
# parcel order has, and keeps a page of 25 orders well under the 1000-point query limit.
ORDER_FIELDS = """
fragment OrderFields on Order {
  id name createdAt processedAt closedAt cancelledAt returnStatus
  disputes { status }
  customer { id }
  shippingAddress { countryCodeV2 }
  fulfillments(first: 10) {
    id status createdAt deliveredAt
    trackingInfo(first: 10) { company number url }
  }
}
"""

CUSTOMER_WITH_ORDERS = (
    """
query CustomerWithOrders($id: ID!, $after: String) {
  customer(id: $id) {
    id createdAt updatedAt numberOfOrders canDelete firstName lastName
    defaultEmailAddress { emailAddress marketingState marketingUpdatedAt }
    defaultPhoneNumber { phoneNumber marketingState marketingUpdatedAt }
    lastOrder { createdAt }
    orders(first: 25, after: $after, sortKey: CREATED_AT) {
      pageInfo { hasNextPage endCursor }
      nodes { ...OrderFields }
    }
  }
}
"""
    + ORDER_FIELDS
)

ORDERS_BY_IDS = (
    """
query OrdersByIds($ids: [ID!]!) {
  nodes(ids: $ids) { __typename ...OrderFields }
}
"""
    + ORDER_FIELDS
)

SHOP_INFO = """
query ShopInfo {
  shop {
    id name contactEmail ianaTimezone currencyCode
    plan { publicDisplayName }
    shopAddress { company address1 address2 zip city province country countryCodeV2 }
  }
}
"""

EMAIL_CONSENT = """
mutation EmailMarketingConsent($input: CustomerEmailMarketingConsentUpdateInput!) {
  customerEmailMarketingConsentUpdate(input: $input) {
    customer { id }
    userErrors { field message code }
  }
}
"""

SMS_CONSENT = """
mutation SmsMarketingConsent($input: CustomerSmsMarketingConsentUpdateInput!) {
  customerSmsMarketingConsentUpdate(input: $input) {
    customer { id }
    userErrors { field message code }
  }
}
"""

REQUEST_ERASURE = """
mutation RequestCustomerErasure($customerId: ID!) {
  customerRequestDataErasure(customerId: $customerId) {
    customerId
    userErrors { field message code }
  }
}
"""

CANCEL_ERASURE = """
mutation CancelCustomerErasure($customerId: ID!) {
  customerCancelDataErasure(customerId: $customerId) {
    customerId
    userErrors { field message code }
  }
}
"""

# The register extract (Art. 15): everything the app's scopes can read about the customer, apart
# from the planning documents above so that sweeps and erasures do not pay for the detail. Pages of
# 4 orders with up to 25 line items each keep a call well under the 1000-point query limit.
EXPORT_FIELDS = """
fragment ExportAddress on MailingAddress {
  name firstName lastName company address1 address2 zip city province country countryCodeV2 phone
}
fragment ExportMoney on MoneyBag { shopMoney { amount currencyCode } }
fragment ExportOrder on Order {
  id name createdAt processedAt closedAt cancelledAt
  email phone note tags customerLocale currencyCode
  displayFinancialStatus displayFulfillmentStatus
  customAttributes { key value }
  billingAddress { ...ExportAddress }
  shippingAddress { ...ExportAddress }
  shippingLine { title originalPriceSet { ...ExportMoney } }
  subtotalPriceSet { ...ExportMoney }
  totalShippingPriceSet { ...ExportMoney }
  totalTaxSet { ...ExportMoney }
  totalDiscountsSet { ...ExportMoney }
  totalPriceSet { ...ExportMoney }
  lineItems(first: 25) {
    nodes {
      title variantTitle sku quantity
      originalUnitPriceSet { ...ExportMoney }
      originalTotalSet { ...ExportMoney }
    }
    pageInfo { hasNextPage }
  }
  fulfillments(first: 10) {
    status displayStatus createdAt inTransitAt deliveredAt
    trackingInfo(first: 10) { company number url }
  }
}
"""

CUSTOMER_EXPORT = (
    """
query CustomerExport($id: ID!, $after: String) {
  customer(id: $id) {
    id firstName lastName displayName note tags locale state createdAt updatedAt numberOfOrders
    amountSpent { amount currencyCode }
    defaultEmailAddress { emailAddress marketingState marketingOptInLevel marketingUpdatedAt }
    defaultPhoneNumber { phoneNumber marketingState marketingOptInLevel marketingUpdatedAt }
    addressesV2(first: 50) { nodes { ...ExportAddress } }
    orders(first: 4, after: $after, sortKey: CREATED_AT) {
      pageInfo { hasNextPage endCursor }
      nodes { ...ExportOrder }
    }
  }
}
"""
    + EXPORT_FIELDS
)

ORDERS_EXPORT = (
    """
query OrdersExport($ids: [ID!]!) {
  nodes(ids: $ids) { __typename ...ExportOrder }
}
"""
    + EXPORT_FIELDS
)

DOCUMENTS = {
    "CustomerWithOrders": CUSTOMER_WITH_ORDERS,
    "OrdersByIds": ORDERS_BY_IDS,
    "ShopInfo": SHOP_INFO,
    "EmailMarketingConsent": EMAIL_CONSENT,
    "SmsMarketingConsent": SMS_CONSENT,
    "RequestCustomerErasure": REQUEST_ERASURE,
    "CancelCustomerErasure": CANCEL_ERASURE,
    "CustomerExport": CUSTOMER_EXPORT,
    "OrdersExport": ORDERS_EXPORT,
}

NODES_PER_CALL = 50
EXPORT_NODES_PER_CALL = 4  # orders with their line items: keeps a call's cost bounded


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_tracking(value: dict[str, Any]) -> TrackingInfo:
    return TrackingInfo(company=value.get("company"), number=value.get("number"), url=value.get("url"))


def parse_fulfillment(value: dict[str, Any]) -> FulfillmentRecord:
    return FulfillmentRecord(
        id=legacy_id(value["id"]),
        status=value.get("status"),
        created_at=parse_time(value.get("createdAt")),
        delivered_at=parse_time(value.get("deliveredAt")),
        tracking=tuple(parse_tracking(t) for t in value.get("trackingInfo") or ()),
    )


# `DisputeStatus` values of a dispute still to be decided (the others: ACCEPTED, LOST, WON and the
# retired CHARGE_REFUNDED, are settled).
OPEN_DISPUTE = frozenset({"NEEDS_RESPONSE", "UNDER_REVIEW"})
# `OrderReturnStatus` values of a return not yet settled: requested, under way, or inspected but not
# yet closed as RETURNED (NO_RETURN, RETURNED and RETURN_FAILED are settled).
OPEN_RETURN = frozenset({"RETURN_REQUESTED", "IN_PROGRESS", "INSPECTION_COMPLETE"})


def parse_order(value: dict[str, Any], extra_fulfillments: Sequence[dict[str, Any]] = ()) -> OrderRecord:
    """An `OrderFields` node. `extra_fulfillments` are fulfillments that arrived as separate bulk lines."""
    created = parse_time(value["createdAt"])
    assert created is not None
    customer = value.get("customer") or {}
    address = value.get("shippingAddress") or {}
    fulfillments = [*(value.get("fulfillments") or ()), *extra_fulfillments]
    return OrderRecord(
        id=legacy_id(value["id"]),
        name=str(value.get("name") or ""),
        created_at=created,
        processed_at=parse_time(value.get("processedAt")),
        closed_at=parse_time(value.get("closedAt")),
        cancelled_at=parse_time(value.get("cancelledAt")),
        customer_id=legacy_id(customer["id"]) if customer.get("id") else None,
        shipping_country=address.get("countryCodeV2"),
        fulfillments=tuple(parse_fulfillment(f) for f in fulfillments),
        open_dispute=any(d.get("status") in OPEN_DISPUTE for d in value.get("disputes") or ()),
        open_return=value.get("returnStatus") in OPEN_RETURN,
    )


def parse_customer(value: dict[str, Any], orders: Sequence[OrderRecord] = ()) -> CustomerRecord:
    email = value.get("defaultEmailAddress") or {}
    phone = value.get("defaultPhoneNumber") or {}
    last_order = value.get("lastOrder") or {}
    return CustomerRecord(
        id=legacy_id(value["id"]),
        email=email.get("emailAddress"),
        phone=phone.get("phoneNumber"),
        first_name=value.get("firstName"),
        last_name=value.get("lastName"),
        email_marketing_state=email.get("marketingState"),
        sms_marketing_state=phone.get("marketingState"),
        marketing_updated_at=parse_time(email.get("marketingUpdatedAt")),
        number_of_orders=int(value.get("numberOfOrders") or 0),
        can_delete=bool(value.get("canDelete")),
        created_at=parse_time(value.get("createdAt")),
        updated_at=parse_time(value.get("updatedAt")),
        last_order_at=parse_time(last_order.get("createdAt")),
        orders=tuple(orders),
    )


async def fetch_customer(client: AdminClient, customer_id: int) -> CustomerRecord | None:
    """The customer with every order (all pages), fulfillments and tracking; None when absent."""
    variables: dict[str, Any] = {"id": gid("Customer", customer_id)}
    orders: list[OrderRecord] = []
    customer: dict[str, Any] | None = None
    while True:
        data = await client.execute(CUSTOMER_WITH_ORDERS, variables)
        page = data.get("customer")
        if page is None:
            return None
        customer = customer or page
        connection = page.get("orders") or {}
        orders.extend(parse_order(node) for node in connection.get("nodes") or ())
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            break
        variables["after"] = info["endCursor"]
    return parse_customer(customer, orders)


async def fetch_orders(client: AdminClient, ids: Sequence[int]) -> list[OrderRecord]:
    """Orders by legacy id, in the order asked; ids Shopify does not know (or hides) are left out."""
    found: list[OrderRecord] = []
    for start in range(0, len(ids), NODES_PER_CALL):
        chunk = [gid("Order", i) for i in ids[start : start + NODES_PER_CALL]]
        data = await client.execute(ORDERS_BY_IDS, {"ids": chunk})
        found.extend(parse_order(n) for n in data.get("nodes") or () if n and n.get("__typename") == "Order")
    return found


def postal_address(address: dict[str, Any]) -> str | None:
    """The shop's business address on one line (street, postcode and city, region, country)."""
    town = " ".join(str(part).strip() for part in (address.get("zip"), address.get("city")) if part)
    parts = [
        address.get("address1"),
        address.get("address2"),
        town,
        address.get("province"),
        address.get("country"),
    ]
    line = ", ".join(str(part).strip() for part in parts if part and str(part).strip())
    return line or None


async def fetch_shop(client: AdminClient) -> ShopRecord:
    shop = (await client.execute(SHOP_INFO))["shop"]
    address = shop.get("shopAddress") or {}
    return ShopRecord(
        id=legacy_id(shop["id"]),
        name=shop["name"],
        email=shop.get("contactEmail"),
        # Shopify has no legal-name field on the shop; the billing address's company is the
        # "legal name of business" of the store's billing details, when the owner entered one.
        legal_name=(address.get("company") or "").strip() or None,
        address=postal_address(address),
        country=address.get("countryCodeV2"),
        timezone=shop.get("ianaTimezone"),
        currency=shop.get("currencyCode"),
        plan=(shop.get("plan") or {}).get("publicDisplayName"),
    )


async def set_marketing_unsubscribed(
    client: AdminClient, customer_id: int, *, email: bool, sms: bool, now: datetime | None = None
) -> None:
    """E-mail and/or SMS marketing consent → UNSUBSCRIBED. Raises `UserErrors` (e.g. code INVALID
    when the customer has no address for that channel); the caller decides whether that is done."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    consent = {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": moment}
    customer = gid("Customer", customer_id)
    if email:
        await client.mutate(
            EMAIL_CONSENT,
            {"input": {"customerId": customer, "emailMarketingConsent": consent}},
            "customerEmailMarketingConsentUpdate",
        )
    if sms:
        await client.mutate(
            SMS_CONSENT,
            {"input": {"customerId": customer, "smsMarketingConsent": consent}},
            "customerSmsMarketingConsentUpdate",
        )


async def request_customer_erasure(client: AdminClient, customer_id: int) -> str | None:
    """Ask Shopify to erase the customer (as the admin's "Erase personal data" does). Returns the
    customer's GID, or None when Shopify no longer has the customer (nothing left to erase)."""
    try:
        result = await client.mutate(
            REQUEST_ERASURE, {"customerId": gid("Customer", customer_id)}, "customerRequestDataErasure"
        )
    except UserErrors as exc:
        if exc.codes == {"DOES_NOT_EXIST"}:
            return None
        raise
    value = result.get("customerId")
    return str(value) if value else None


async def cancel_customer_erasure(client: AdminClient, customer_id: int) -> str:
    """Cancel the erasure this app requested for the customer (since 31 May 2025 only the
    requesting app can). Returns the customer's GID; raises `UserErrors` with Shopify's codes:
    NOT_BEING_ERASED (none pending, or already carried out), UNAUTHORIZED_CANCELLATION (another
    requester's), DOES_NOT_EXIST, FAILED_TO_CANCEL."""
    customer = gid("Customer", customer_id)
    result = await client.mutate(CANCEL_ERASURE, {"customerId": customer}, "customerCancelDataErasure")
    return str(result.get("customerId") or customer)


# The export's shape: Shopify's own words (states, levels, money as decimal strings), times in UTC.


def _money(value: Any) -> dict[str, str] | None:
    money = (value or {}).get("shopMoney") if isinstance(value, dict) and "shopMoney" in value else value
    if not money or money.get("amount") is None:
        return None
    return {"amount": str(money["amount"]), "currency": str(money["currencyCode"])}


def _time(value: Any) -> str | None:
    moment = parse_time(value)
    return moment.astimezone(UTC).isoformat() if moment else None


def _address(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return None
    keys = ("name", "company", "address1", "address2", "zip", "city", "province", "country", "phone")
    found = {k: value.get(k) for k in keys}
    found["country_code"] = value.get("countryCodeV2")
    return found


def _consent(value: dict[str, Any] | None, field: str, key: str) -> dict[str, Any] | None:
    if not value:
        return None
    return {
        key: value.get(field),
        "state": value.get("marketingState"),
        "opt_in_level": value.get("marketingOptInLevel"),
        "consent_updated_at": _time(value.get("marketingUpdatedAt")),
    }


def export_order(value: dict[str, Any]) -> dict[str, Any]:
    """An `ExportOrder` node as the register extract shows it."""
    return {
        "id": legacy_id(value["id"]),
        "name": value.get("name"),
        "created_at": _time(value.get("createdAt")),
        "processed_at": _time(value.get("processedAt")),
        "closed_at": _time(value.get("closedAt")),
        "cancelled_at": _time(value.get("cancelledAt")),
        "email": value.get("email"),
        "phone": value.get("phone"),
        "note": value.get("note"),
        "tags": list(value.get("tags") or ()),
        "locale": value.get("customerLocale"),
        "currency": value.get("currencyCode"),
        "financial_status": value.get("displayFinancialStatus"),
        "fulfillment_status": value.get("displayFulfillmentStatus"),
        "attributes": {a["key"]: a.get("value") for a in value.get("customAttributes") or ()},
        "billing_address": _address(value.get("billingAddress")),
        "shipping_address": _address(value.get("shippingAddress")),
        "shipping_method": (value.get("shippingLine") or {}).get("title"),
        "line_items": [
            {
                "title": item.get("title"),
                "variant": item.get("variantTitle"),
                "sku": item.get("sku"),
                "quantity": item.get("quantity"),
                "unit_price": _money(item.get("originalUnitPriceSet")),
                "total": _money(item.get("originalTotalSet")),
            }
            for item in (value.get("lineItems") or {}).get("nodes") or ()
        ],
        # An order with more lines than one page holds says so instead of looking complete.
        **(
            {"line_items_incomplete": True}
            if ((value.get("lineItems") or {}).get("pageInfo") or {}).get("hasNextPage")
            else {}
        ),
        "totals": {
            "subtotal": _money(value.get("subtotalPriceSet")),
            "shipping": _money(value.get("totalShippingPriceSet")),
            "tax": _money(value.get("totalTaxSet")),
            "discounts": _money(value.get("totalDiscountsSet")),
            "total": _money(value.get("totalPriceSet")),
        },
        "fulfillments": [
            {
                "status": f.get("displayStatus") or f.get("status"),
                "created_at": _time(f.get("createdAt")),
                "in_transit_at": _time(f.get("inTransitAt")),
                "delivered_at": _time(f.get("deliveredAt")),
                "tracking": [
                    {"carrier": t.get("company"), "number": t.get("number"), "url": t.get("url")}
                    for t in f.get("trackingInfo") or ()
                ],
            }
            for f in value.get("fulfillments") or ()
        ],
    }


def export_customer(value: dict[str, Any]) -> dict[str, Any]:
    """A `CustomerExport` customer (without its orders, which come separately) as the extract shows it."""
    return {
        "id": legacy_id(value["id"]),
        "first_name": value.get("firstName"),
        "last_name": value.get("lastName"),
        "display_name": value.get("displayName"),
        "email": (value.get("defaultEmailAddress") or {}).get("emailAddress"),
        "phone": (value.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        "note": value.get("note"),
        "tags": list(value.get("tags") or ()),
        "locale": value.get("locale"),
        "state": value.get("state"),
        "created_at": _time(value.get("createdAt")),
        "updated_at": _time(value.get("updatedAt")),
        "number_of_orders": int(value.get("numberOfOrders") or 0),
        "amount_spent": _money(value.get("amountSpent")),
        "addresses": [_address(a) for a in (value.get("addressesV2") or {}).get("nodes") or ()],
        "marketing_consent": {
            "email": _consent(value.get("defaultEmailAddress"), "emailAddress", "email_address"),
            "sms": _consent(value.get("defaultPhoneNumber"), "phoneNumber", "phone_number"),
        },
    }


async def export_customer_data(
    client: AdminClient, customer_id: int | None, order_ids: Sequence[int]
) -> dict[str, Any]:
    """Everything the app's scopes read about the customer and the given orders, for the register
    extract: `{"customer": …, "orders": [...]}` (the customer's orders, every page, then any of
    `order_ids` that are not theirs)."""
    customer: dict[str, Any] | None = None
    orders: list[dict[str, Any]] = []
    if customer_id is not None:
        variables: dict[str, Any] = {"id": gid("Customer", customer_id)}
        while True:
            page = (await client.execute(CUSTOMER_EXPORT, variables)).get("customer")
            if page is None:
                break
            customer = customer or page
            connection = page.get("orders") or {}
            orders.extend(export_order(node) for node in connection.get("nodes") or ())
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                break
            variables["after"] = info["endCursor"]
    seen = {o["id"] for o in orders}
    missing = [i for i in order_ids if i not in seen]
    for start in range(0, len(missing), EXPORT_NODES_PER_CALL):
        chunk = [gid("Order", i) for i in missing[start : start + EXPORT_NODES_PER_CALL]]
        data = await client.execute(ORDERS_EXPORT, {"ids": chunk})
        orders.extend(
            export_order(n) for n in data.get("nodes") or () if n and n.get("__typename") == "Order"
        )
    return {"customer": export_customer(customer) if customer else None, "orders": orders}
