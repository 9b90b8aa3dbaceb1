"""The shipment reference has one owner, `plugin.holdings.ShipmentRef`: built and read in one place."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from plugin.holdings import (
    Category,
    Holding,
    Shipment,
    ShipmentRef,
    shipment_of_holding,
    shipments_of_holdings,
)


def test_format_and_parse() -> None:
    assert ShipmentRef(1001, "RR123SE").format() == "shipment:1001:RR123SE"
    assert ShipmentRef(1001, None).format() == "shipment:1001:untracked"
    assert ShipmentRef.parse("shipment:1001:untracked") == ShipmentRef(1001, None)
    assert ShipmentRef.parse("shipment:1001:JJD:00:1") == ShipmentRef(1001, "JJD:00:1")
    for other in ("order:1001", "shipment:x:1", "shipment:1001", "parcel:1:2:3", ""):
        assert ShipmentRef.parse(other) is None, other


@given(
    st.integers(min_value=0, max_value=2**62),
    st.none() | st.text(min_size=1).filter(lambda t: t != "untracked"),
)
def test_parse_reads_what_format_wrote(order_id: int, tracking: str | None) -> None:
    ref = ShipmentRef(order_id, tracking)
    assert ShipmentRef.parse(ref.format()) == ref


def test_a_holding_gives_back_its_shipment_with_the_order_name_from_its_label() -> None:
    shipment = Shipment(5551, "#1001", "postnord", "RR123SE", delivered=date(2026, 1, 2), country="SE")
    ref = ShipmentRef.of(shipment)
    holding = Holding(
        "postnord",
        Category.SHIPMENT,
        ref.format(),
        ref.label(shipment.order_name),
        delivered=shipment.delivered,
        country="SE",
    )
    assert shipment_of_holding(holding) == shipment
    order = Holding("shopify", Category.ACCOUNTING_RECORD, "order:5551", "Order #1001")
    assert shipment_of_holding(order) is None
    assert shipments_of_holdings([order, holding]) == (shipment,)
