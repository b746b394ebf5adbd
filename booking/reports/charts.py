"""Report charts as inline SVG drawn by pygal on the server: readable without JavaScript (no
script is linked), and each one has its table under it on the page."""

from __future__ import annotations

from xml.etree import ElementTree

import pygal
from flask_babel import gettext as _
from markupsafe import Markup
from pygal.style import Style

from booking.billing.money import format_yuan

STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    font_family='"Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif',
    colors=("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#4b5563"),
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
    title_font_size=14,
)
COMMON = {
    "style": STYLE,
    "js": [],  # no script: the SVG is static and the table below carries the exact numbers
    "disable_xml_declaration": True,
    "width": 900,
    "height": 320,
    "explicit_size": False,
    "legend_at_bottom": True,
    "legend_at_bottom_columns": 4,
    "truncate_legend": 28,
    "x_label_rotation": 30,
    "print_values": False,
}
MAX_SERIES = 8  # more lines than this is noise; the table lists every resource


def _svg(chart) -> Markup:
    """The chart's SVG without pygal's configuration script: nothing on the page runs."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.endswith("script"):
                parent.remove(child)
    return Markup(ElementTree.tostring(tree, encoding="unicode"))  # text is escaped here


def utilisation_chart(title: str, buckets: list[str], series: list[tuple[str, list]]) -> Markup:
    """One line per resource: utilisation in percent per day or month (None: not open)."""
    chart = pygal.Line(
        title=title,
        range=(0, 100),
        y_title="%",
        show_minor_x_labels=len(buckets) <= 31,
        x_labels_major_count=12,
        **COMMON,
    )
    chart.x_labels = buckets
    for name, values in series[:MAX_SERIES]:
        chart.add(name, values)
    return _svg(chart)


def heat_map_chart(title: str, weekday_names: list[str], grid_hours: list[list[float]]) -> Markup:
    """Weekday × hour of use as a punch card: the bigger the dot, the more hours used."""
    chart = pygal.Dot(title=title, show_legend=False, **{**COMMON, "x_label_rotation": 0})
    chart.x_labels = [f"{h:02d}" for h in range(24)]
    for name, row in zip(weekday_names, grid_hours, strict=True):
        chart.add(name, [v or None for v in row])
    return _svg(chart)


def revenue_chart(months: list[str], invoiced_fen: list[int], estimated_fen: list[int]) -> Markup:
    chart = pygal.StackedBar(
        title=_("Revenue by month"),
        value_formatter=lambda yuan: format_yuan(round(yuan * 100)) if yuan is not None else "",
        y_title="¥",
        **COMMON,
    )
    chart.x_labels = months
    chart.add(_("Invoiced"), [fen / 100 for fen in invoiced_fen])
    chart.add(_("Estimated, not yet invoiced"), [fen / 100 for fen in estimated_fen])
    return _svg(chart)


def carriers_chart(title: str, names: list[str], series: list[tuple[str, list]]) -> Markup:
    """Percentages per carrier side by side (utilisation, sharing rate)."""
    chart = pygal.Bar(title=title, range=(0, 100), y_title="%", **COMMON)
    chart.x_labels = names
    for name, values in series:
        chart.add(name, values)
    return _svg(chart)
