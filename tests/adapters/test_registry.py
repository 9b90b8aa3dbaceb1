"""The catalogue is built from the adapters' own declarations: a third-party adapter is one module
plus an entry point, matches shipments by the spellings it declares and is a recipient by the facts
it declares; it can never replace a built-in adapter or claim another's spelling."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from adapters import carriers, registry
from adapters.base import Adapter, AdapterConfig
from adapters.email_request import EmailRequestConfig
from adapters.registry import CatalogueError, catalogue
from plugin.documents.recipients import recipient_entry
from plugin.holdings import Category
from tests.adapters.support import build, subject


def _clear() -> None:
    registry.systems.cache_clear()
    registry.catalogue.cache_clear()
    carriers.aliases.cache_clear()
    carriers.carrier_adapter.cache_clear()


@pytest.fixture
def plug_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install entry points `name=attribute of tests.adapters.third_party` for one test."""

    def install(**points: str) -> None:
        found = [
            EntryPoint(name, f"tests.adapters.third_party:{target}", registry.ENTRY_POINT_GROUP)
            for name, target in points.items()
        ]
        monkeypatch.setattr(registry, "entry_points", lambda group: found)
        _clear()

    yield install
    monkeypatch.undo()
    _clear()


async def test_a_third_party_carrier_is_one_module_and_an_entry_point(plug_in: Any) -> None:
    plug_in(exempel_frakt="Exempel")
    assert catalogue()["exempel_frakt"].title == "Exempel Frakt"
    # Its declared spellings match Shopify's free text, legal suffix and all; the built-ins still do.
    assert carriers.carrier_adapter("Exempel Frakt AB") == "exempel_frakt"
    assert carriers.carrier_adapter("Exempel Logistik Express") == "exempel_frakt"
    assert carriers.carrier_adapter("PostNord Sverige AB") == "postnord"
    assert carriers.unknown_carriers(["Exempel Frakt", "GLS"]) == ["GLS"]
    assert registry.recipients()["exempel_frakt"].legal_name == "Exempel Frakt AB"

    cls = registry.get("exempel_frakt")
    adapter, outbox, _ = build(cls)
    customer = subject(("#1001", "Exempel Frakt AB", "EX-1"), ("#1002", "PostNord", "PN-2"))
    [holding] = await adapter.find(customer)
    await adapter.check()
    await adapter.erase(customer, holding)
    [mail] = outbox.sent
    assert mail["to"] == "dataskydd@exempelfrakt.example" and "EX-1" in mail["body"]
    assert "PN-2" not in mail["body"]


@pytest.mark.parametrize(
    ("points", "named"),
    [
        ({"postnord": "Exempel"}, "'postnord'"),  # the entry point's name is a built-in's
        ({"postnord_plus": "NotPostNord"}, "'postnord'"),  # the class's name is a built-in's
        ({"exempel_frakt": "Exempel", "exempel_again": "Exempel"}, "'exempel_frakt'"),  # two plug-ins
    ],
)
def test_a_name_clash_is_an_error_never_a_replacement(
    plug_in: Any, points: dict[str, str], named: str
) -> None:
    plug_in(**points)
    with pytest.raises(CatalogueError, match="would replace") as clash:
        catalogue()
    assert named in str(clash.value) and "tests.adapters.third_party" in str(clash.value)


def test_a_spelling_claimed_twice_is_an_error(plug_in: Any) -> None:
    plug_in(posten_clone="ClaimsBring")
    with pytest.raises(CatalogueError, match="'bring' and 'posten_clone' both declare"):
        carriers.carrier_adapter("Posten Norge AS")


def test_an_entry_point_that_is_no_adapter_is_refused(plug_in: Any) -> None:
    plug_in(nothing="NOT_AN_ADAPTER")
    with pytest.raises(CatalogueError, match=r"'nothing'.*not an Adapter subclass"):
        catalogue()


def test_a_plug_in_without_recipient_facts_is_listed_as_unknown(plug_in: Any) -> None:
    plug_in(acme_crm="Crm")
    assert "acme_crm" in catalogue() and "acme_crm" not in registry.recipients()
    assert recipient_entry("acme_crm", "Acme CRM", None)["legal_name"] is None


def test_an_adapter_without_a_channel_must_implement_the_calls() -> None:
    with pytest.raises(TypeError, match=r"'half_done'.*find, erase, export"):

        class HalfDone(Adapter[AdapterConfig]):
            name = "half_done"
            title = "Half done"
            category = Category.NEWSLETTER


def test_every_adapter_with_an_email_channel_lets_the_shop_set_its_address() -> None:
    with_mail = {name: cls for name, cls in catalogue().items() if cls.mail is not None}
    assert {"postnord", "budbee", "sendcloud", "nshift", "dhl_parcel_de", "omnisend"} <= set(with_mail)
    for name, cls in with_mail.items():
        assert issubclass(cls.Config, EmailRequestConfig), name


def test_the_config_comes_from_the_type_parameter() -> None:
    found = catalogue()
    assert [found[name].Config.__name__ for name in ("klaviyo", "posti", "budbee", "shopify")] == [
        "KlaviyoConfig",
        "EmailRequestConfig",
        "BudbeeConfig",
        "ShopifyConfig",
    ]
