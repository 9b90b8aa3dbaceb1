"""A pruned copy of Shopify's Admin schema: only the root fields, types and fields the Shopify fake
serves, cut from the real 2026-01 SDL without changing a single definition it keeps.

The full schema lives beside the repository (../shared/reference). Where it is absent, the fake
falls back to this copy (and says so loudly): the fake still answers, but validation covers only the
fields the fake serves. `test_subset_is_current` keeps the checked-in copy in step with the full file.

    .venv/bin/python -m tests.fakes.shopify_schema_subset   # rewrite the checked-in copy
"""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path

from graphql import (
    DefinitionNode,
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    TypeNode,
    UnionTypeDefinitionNode,
    parse,
    print_ast,
)

SUBSET_PATH = Path(__file__).with_name("shopify-admin-2026-01.subset.graphql")
HEADER = (
    "# Pruned from Shopify's introspected Admin API schema, version 2026-01, by\n"
    "# tests/fakes/shopify_schema_subset.py: only what tests/fakes/shopify.py serves. Do not edit.\n\n"
)

# Fields the fake answers, per type; types not listed keep every field (payloads, errors, inputs,
# enums) or their connection shape.
FIELDS: dict[str, set[str]] = {
    "QueryRoot": {"shop", "customer", "customers", "orders", "nodes", "bulkOperation"},
    "Mutation": {
        "customerEmailMarketingConsentUpdate",
        "customerSmsMarketingConsentUpdate",
        "customerRequestDataErasure",
        "customerCancelDataErasure",
        "bulkOperationRunQuery",
    },
    "Shop": {
        "id",
        "name",
        "email",
        "contactEmail",
        "myshopifyDomain",
        "ianaTimezone",
        "currencyCode",
        "plan",
        "shopAddress",
    },
    "ShopAddress": {
        "id",
        "countryCodeV2",
        "countryCode",
        "coordinatesValidated",
        "formatted",
        "company",
        "address1",
        "address2",
        "zip",
        "city",
        "province",
        "country",
    },
    "Customer": {
        "id",
        "legacyResourceId",
        "firstName",
        "lastName",
        "displayName",
        "email",
        "phone",
        "defaultEmailAddress",
        "defaultPhoneNumber",
        "emailMarketingConsent",
        "smsMarketingConsent",
        "numberOfOrders",
        "canDelete",
        "createdAt",
        "updatedAt",
        "lastOrder",
        "orders",
        "note",
        "tags",
        "locale",
        "state",
        "amountSpent",
        "addressesV2",
    },
    "CustomerEmailAddress": {"emailAddress", "marketingState", "marketingUpdatedAt", "marketingOptInLevel"},
    "CustomerPhoneNumber": {"phoneNumber", "marketingState", "marketingUpdatedAt", "marketingOptInLevel"},
    "CustomerEmailMarketingConsentState": {"marketingState", "consentUpdatedAt"},
    "CustomerSmsMarketingConsentState": {"marketingState", "consentUpdatedAt"},
    "Order": {
        "id",
        "legacyResourceId",
        "name",
        "createdAt",
        "processedAt",
        "closedAt",
        "cancelledAt",
        "updatedAt",
        "email",
        "currencyCode",
        "customer",
        "shippingAddress",
        "fulfillments",
        "phone",
        "note",
        "tags",
        "customerLocale",
        "displayFinancialStatus",
        "displayFulfillmentStatus",
        "customAttributes",
        "billingAddress",
        "shippingLine",
        "subtotalPriceSet",
        "totalShippingPriceSet",
        "totalTaxSet",
        "totalDiscountsSet",
        "totalPriceSet",
        "lineItems",
        "disputes",
        "returnStatus",
    },
    "MailingAddress": {
        "id",
        "countryCodeV2",
        "countryCode",
        "name",
        "firstName",
        "lastName",
        "company",
        "address1",
        "address2",
        "zip",
        "city",
        "province",
        "country",
        "phone",
    },
    "LineItem": {
        "id",
        "title",
        "variantTitle",
        "sku",
        "quantity",
        "originalUnitPriceSet",
        "originalTotalSet",
    },
    "ShippingLine": {"title", "originalPriceSet"},
    "Fulfillment": {
        "id",
        "legacyResourceId",
        "name",
        "status",
        "displayStatus",
        "createdAt",
        "updatedAt",
        "deliveredAt",
        "inTransitAt",
        "trackingInfo",
    },
    "BulkOperation": {
        "id",
        "status",
        "errorCode",
        "createdAt",
        "completedAt",
        "objectCount",
        "rootObjectCount",
        "fileSize",
        "url",
        "partialDataUrl",
        "query",
        "type",
    },
    "Node": {"id"},
}
INTERFACES = {"Node"}


def _named(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    return str(node.name.value)  # type: ignore[attr-defined]


def _keep_field(type_name: str, field_name: str) -> bool:
    if type_name in FIELDS:
        return field_name in FIELDS[type_name]
    if type_name.endswith("Connection"):
        return field_name in {"edges", "nodes", "pageInfo"}
    if type_name.endswith("Edge"):
        return field_name in {"cursor", "node"}
    return True


def prune(sdl: str) -> str:
    document = parse(sdl, no_location=True)
    by_name = {
        d.name.value: d
        for d in document.definitions
        if hasattr(d, "name") and d.name is not None and not isinstance(d, DirectiveDefinitionNode)
    }
    directives = [d for d in document.definitions if isinstance(d, DirectiveDefinitionNode)]
    schema = next(d for d in document.definitions if isinstance(d, SchemaDefinitionNode))
    wanted: deque[str] = deque(["QueryRoot", "Mutation", "Node"])
    for directive in directives:
        wanted.extend(_named(arg.type) for arg in directive.arguments or ())
    kept: dict[str, DefinitionNode] = {}
    while wanted:
        name = wanted.popleft()
        if name in kept or name not in by_name:
            continue
        original = by_name[name]
        if (
            isinstance(original, InterfaceTypeDefinitionNode | UnionTypeDefinitionNode)
            and name not in INTERFACES
        ):
            continue
        node = original
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            node = dataclasses.replace(
                node,
                fields=tuple(f for f in node.fields or () if _keep_field(name, f.name.value)),
                interfaces=tuple(i for i in node.interfaces or () if i.name.value in INTERFACES),
            )
            for field in node.fields or ():
                wanted.append(_named(field.type))
                wanted.extend(_named(arg.type) for arg in field.arguments or ())
        elif isinstance(node, InputObjectTypeDefinitionNode):
            wanted.extend(_named(f.type) for f in node.fields or ())
        elif not isinstance(node, EnumTypeDefinitionNode | ScalarTypeDefinitionNode):
            continue
        kept[name] = node
    definitions = [schema, *directives, *(kept[n] for n in sorted(kept))]
    return HEADER + print_ast(DocumentNode(definitions=tuple(definitions))) + "\n"


def main() -> None:
    from tests.fakes.shopify import SCHEMA_PATH

    SUBSET_PATH.write_text(prune(SCHEMA_PATH.read_text()))
    print(f"wrote {SUBSET_PATH}")


if __name__ == "__main__":
    main()
