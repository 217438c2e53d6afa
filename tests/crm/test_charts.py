"""crm.charts: small accessible SVG charts, rendered on the server."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from crm import charts
from crm.charts import axis_top, bar_chart, chart, format_number, line_chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = [("2 Mar", 100.0), ("9 Mar", 50.0), ("16 Mar", None), ("23 Mar", 0.0)]


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 - our own output


def texts(root: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def relative_luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_on_white(hex_colour: str) -> float:
    return 1.05 / (relative_luminance(hex_colour) + 0.05)


@pytest.mark.parametrize("kind", ["line", "bar"])
def test_it_is_an_image_named_and_described_by_its_title_and_desc(kind: str) -> None:
    root = parse(chart(WEEKS, kind=kind, chart_id="kept", title="Kept on time", description="Bob's promises."))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "kept-title kept-desc"
    assert root.find(f"{SVG}title").get("id") == "kept-title"
    assert root.find(f"{SVG}title").text == "Kept on time"
    desc = root.find(f"{SVG}desc")
    assert desc.get("id") == "kept-desc"
    # The description reads out every value, "no data" included.
    assert desc.text == "Bob's promises. 2 Mar: 100; 9 Mar: 50; 16 Mar: no data; 23 Mar: 0."


@pytest.mark.parametrize("kind", ["line", "bar"])
def test_it_labels_the_axes_and_prints_every_value(kind: str) -> None:
    root = parse(
        chart(
            WEEKS,
            kind=kind,
            chart_id="c",
            title="t",
            x_label="Week starting",
            y_label="%",
            y_max=100,
            format_value=lambda v: f"{format_number(v)}%",
        )
    )
    words = texts(root)
    assert "Week starting" in words
    assert "%" in words  # the unit, once: the axis itself is numbered plainly
    assert [w for w in words if w in {"0", "25", "50", "75", "100"}] == ["0", "25", "50", "75", "100"]
    for label, _value in WEEKS:
        assert label in words
    # Values on the chart: 100%, 50%, 0% and a dash for the week without data.
    assert [w for w in words if w.endswith("%") and w != "%"] == ["100%", "50%", "0%"]
    assert "–" in words


def test_a_line_breaks_where_there_is_no_data() -> None:
    root = parse(line_chart(WEEKS, chart_id="c", title="t", y_max=100))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1  # 2 Mar – 9 Mar; 23 Mar stands alone as a dot
    assert len(lines[0].get("points").split()) == 2
    assert len(root.findall(f"{SVG}circle")) == 3


def test_bars_are_as_tall_as_their_value() -> None:
    root = parse(bar_chart([("a", 10), ("b", 5), ("c", None)], chart_id="c", title="t", y_max=10))
    bars = [rect for rect in root.findall(f"{SVG}rect") if rect.get("fill") == charts.SERIES]
    assert len(bars) == 2
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[0] == pytest.approx(charts.HEIGHT - charts.TOP - charts.BOTTOM)
    assert heights[1] == pytest.approx(heights[0] / 2)


def test_the_y_axis_ends_at_a_round_number_above_the_largest_value() -> None:
    root = parse(bar_chart([("a", 37), ("b", 12)], chart_id="c", title="t"))
    assert [w for w in texts(root) if w in {"0", "10", "20", "30", "40"}] == ["0", "10", "20", "30", "40"]
    assert axis_top(0) == 1
    assert axis_top(1) == 1
    assert axis_top(3) == 3
    assert axis_top(7) == 8
    assert axis_top(11) == 12
    assert axis_top(0.3) == pytest.approx(0.3)
    assert axis_top(0.31) == pytest.approx(0.32)
    assert axis_top(240) == 240
    assert axis_top(250) == 300
    assert axis_top(95) == 100


def test_counts_are_numbered_in_whole_steps() -> None:
    assert axis_top(0, integer=True) == 4
    assert axis_top(1, integer=True) == 4
    assert axis_top(3, integer=True) == 4
    assert axis_top(5, integer=True) == 8
    assert axis_top(9, integer=True) == 12
    assert axis_top(0.5, integer=True) == 4
    root = parse(bar_chart([("a", 3), ("b", 1)], chart_id="c", title="t", integer=True, y_label="jobs"))
    assert [w for w in texts(root) if w.isdigit()][:5] == ["0", "1", "2", "3", "4"]


def test_it_escapes_every_text() -> None:
    svg = chart(
        [("<b>&", 1)], kind="bar", chart_id='x" onload="alert(1)', title="<script>", description="a & b", y_label="<i>"
    )
    root = parse(svg)  # still well-formed XML
    assert "<script>" not in svg
    assert 'onload="' not in svg
    assert root.find(f"{SVG}title").text == "<script>"
    assert "<b>&" in texts(root)


def test_without_data_it_says_so() -> None:
    root = parse(line_chart([("a", None), ("b", None)], chart_id="c", title="t"))
    assert root.find(f"{SVG}desc").text.endswith("a: no data; b: no data.")
    assert root.findall(f"{SVG}circle") == []
    root = parse(line_chart([], chart_id="c", title="t"))
    assert root.find(f"{SVG}desc").text == "No data."


def test_many_points_thin_out_the_labels_but_the_description_keeps_them_all() -> None:
    points = [(f"w{i}", float(i)) for i in range(53)]
    root = parse(line_chart(points, chart_id="c", title="t"))
    words = texts(root)
    assert len([w for w in words if re.fullmatch(r"w\d+", w)]) <= charts.MAX_X_LABELS
    assert "w52: 52" in root.find(f"{SVG}desc").text


def test_its_colours_are_dark_enough_on_white() -> None:
    # Text (4.5:1) and the marks, which carry the data (3:1; ours are darker still).
    assert contrast_on_white(charts.TEXT) >= 4.5
    assert contrast_on_white(charts.MUTED) >= 4.5
    assert contrast_on_white(charts.SERIES) >= 4.5


def test_it_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError):
        chart(WEEKS, kind="pie", chart_id="c", title="t")


def test_small_steps_keep_their_decimals() -> None:
    root = parse(bar_chart([("a", 0.3)], chart_id="c", title="t", y_max=0.32))
    assert [w for w in texts(root) if w[0].isdigit()][:5] == ["0.00", "0.08", "0.16", "0.24", "0.32"]


def test_format_number() -> None:
    assert format_number(12) == "12"
    assert format_number(12.0) == "12"
    assert format_number(66.666) == "66.7"
    assert format_number(0.04) == "0"
