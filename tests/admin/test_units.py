"""Pure parts of the admin: deadlines, the next sweep in the shop's zone, the chart, the texts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from plugin.admin.chart import nice_max, render, ticks
from plugin.admin.queries import DayCount, next_sweep_at
from plugin.admin.render import counts, mask_email
from plugin.i18n import translate
from plugin.models import Shop

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def test_next_sweep_is_the_sweep_hour_in_the_shops_zone() -> None:
    shop = Shop(domain="s.myshopify.com", timezone="Europe/Stockholm", sweep_hour=3)
    # 12:00 UTC is 13:00 in Stockholm (CET), so the next 03:00 is tomorrow: 02:00 UTC the day
    # after, which is also the night summer time starts (29 March 2026), so 01:00 UTC.
    assert next_sweep_at(shop, NOW) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    early = datetime(2026, 1, 10, 1, 0, tzinfo=UTC)  # 02:00 in Stockholm: today's sweep is still ahead
    assert next_sweep_at(shop, early) == datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    unknown = Shop(domain="s.myshopify.com", timezone="Mars/Olympus", sweep_hour=4)
    assert next_sweep_at(unknown, NOW) == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)


def test_chart_axis_and_marks() -> None:
    assert [nice_max(n) for n in (0, 3, 4, 6, 11, 20, 21, 480)] == [5, 5, 5, 10, 20, 20, 50, 500]
    assert list(ticks(5)) == [0, 1, 2, 3, 4, 5]
    assert list(ticks(20)) == [0, 4, 8, 12, 16, 20]
    assert list(ticks(2)) == [0, 1, 2]
    days = [DayCount(date(2026, 1, 10) + timedelta(days=i), i % 3, 1 if i == 5 else 0) for i in range(30)]
    svg = render(days, title="T <&>", month_names=EN_MONTHS, legend=("R", "E"))
    assert svg.count('<rect class="bar" x=') - 1 == sum(1 for d in days if d.requests)  # minus the legend
    assert "T &lt;&amp;&gt;" in svg and ">Jan<" in svg and ">Feb<" in svg
    # A month that starts late in the window gets no label crowding the next month's.
    late = render(days[20:], title="t", month_names=EN_MONTHS, legend=("r", "e"))
    assert ">Jan<" not in late and ">Feb<" in late
    assert render([], title="t", month_names=EN_MONTHS, legend=("r", "e")) == ""


EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def test_the_admin_reads_its_words_from_the_catalogue() -> None:
    # Every key in every language and the plural forms: tests/test_i18n.py.
    assert translate("sv", "due.left", n=3) == "3 dagar kvar"
    assert translate("sv", "due.left", n=1) == "1 dag kvar"
    assert translate("de", "due.left", n=3) == "3 days left"
    assert translate("en", "no.such.key") == "no.such.key"


def test_masking_and_sweep_counts() -> None:
    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_email(None) is None and mask_email("not-an-address") is None
    report = {"tally": {"categories": {"a": {"seen": 2, "erase": 1, "keep": 1}, "b": {"seen": 3, "keep": 3}}}}
    assert dict(counts(report)) == {"seen": 5, "erase": 1, "keep": 4}
    assert counts({}) == []
