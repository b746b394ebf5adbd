"""Every report table is built once here; the page, the CSV and the Excel file all read the same
Table, so the numbers cannot differ between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from flask_babel import gettext as _

from booking.billing.money import format_yuan
from booking.billing.pricing import EXTERNAL, MEMBER, RESIDENT
from booking.exports import append_row, csv_text, new_workbook, workbook_bytes
from booking.reports import figures as f

TEXT, HOURS, PERCENT, MONEY, COUNT = "text", "hours", "percent", "money", "count"


@dataclass
class Column:
    title: str
    kind: str = TEXT


@dataclass
class Table:
    name: str  # used in export URLs and file names
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    footer: list | None = None  # the total row, if any

    def all_rows(self) -> list[list]:
        return self.rows + ([self.footer] if self.footer else [])

    def shown(self) -> tuple[list[str], list[list[str]], list[str] | None]:
        """CSS class per column, then the body and footer as the page prints them."""
        kinds = [c.kind for c in self.columns]
        css = ["" if k == TEXT else "num" for k in kinds]
        body = [[show(v, k) for v, k in zip(row, kinds, strict=True)] for row in self.rows]
        foot = (
            [show(v, k) for v, k in zip(self.footer, kinds, strict=True)] if self.footer else None
        )
        return css, body, foot


def show(value, kind: str) -> str:
    """A cell as the page shows it."""
    if value is None:
        return "—"
    if kind == MONEY:
        return format_yuan(int(value * 100))
    if kind == PERCENT:
        return f"{value:.1f} %"
    if kind == HOURS:
        return f"{value:,.2f}"
    return str(value)


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _kind_name(kind: str) -> str:
    return {
        "instrument": _("Instrument"),
        "pilot_line": _("Pilot line"),
        "compute": _("Compute"),
        "licence": _("Software licence"),
    }.get(kind, kind)


def _figure_columns() -> list[Column]:
    return [
        Column(_("Available hours"), HOURS),
        Column(_("Booked hours"), HOURS),
        Column(_("Used hours"), HOURS),
        Column(_("Utilisation"), PERCENT),
        Column(_("No-show rate"), PERCENT),
        Column(_("Cancellation rate"), PERCENT),
        Column(_("Invoiced"), MONEY),
        Column(_("Estimated, not yet invoiced"), MONEY),
        Column(_("Voucher subsidy"), MONEY),
        Column(_("Organisations served"), COUNT),
        Column(_("Resident hours"), HOURS),
        Column(_("Platform member hours"), HOURS),
        Column(_("External hours"), HOURS),
        Column(_("Hours not yet attributed"), HOURS),
    ]


def _figure_cells(x: f.Figures) -> list:
    return [
        f.hours(x.available_s),
        f.hours(x.booked_s),
        f.hours(x.used_s),
        f.percent(x.utilisation),
        f.percent(x.no_show_rate),
        f.percent(x.cancellation_rate),
        _yuan(x.invoiced_fen),
        _yuan(x.estimated_fen),
        _yuan(x.subsidy_fen),
        len(x.organisations),
        f.hours(x.used_by_tier_s.get(RESIDENT, 0)),
        f.hours(x.used_by_tier_s.get(MEMBER, 0)),
        f.hours(x.used_by_tier_s.get(EXTERNAL, 0)),
        f.hours(x.used_by_tier_s.get(f.UNATTRIBUTED, 0)),
    ]


def resources_table(report, locale: str) -> Table:
    table = Table(
        "resources",
        _("Resources"),
        [Column(_("Resource")), Column(_("Kind"))] + _figure_columns(),
    )
    for row in report.rows:
        table.rows.append(
            [row.resource.name(locale), _kind_name(row.resource.kind)] + _figure_cells(row.figures)
        )
    if report.unattributed.revenue_fen:
        table.rows.append(
            [_("Adjustments and credit notes"), ""] + _figure_cells(report.unattributed)
        )
    table.footer = [_("Total"), ""] + _figure_cells(report.total)
    return table


def kinds_table(by_kind: dict[str, f.Figures]) -> Table:
    """One row per kind of resource and no total: utilisation is only comparable within a kind."""
    table = Table("kinds", _("By kind of resource"), [Column(_("Kind"))] + _figure_columns())
    for kind, figures in by_kind.items():
        table.rows.append([_kind_name(kind)] + _figure_cells(figures))
    return table


def carriers_table(platform, locale: str) -> Table:
    table = Table("carriers", _("Carriers"), [Column(_("Carrier"))] + _figure_columns())
    for report in platform.carriers:
        table.rows.append([report.carrier.name(locale)] + _figure_cells(report.total))
    table.footer = [_("Platform")] + _figure_cells(platform.total)
    return table


def _sharing_columns() -> list[Column]:
    return [
        Column(_("External service hours"), HOURS),
        Column(_("Effective hours"), HOURS),
        Column(_("Sharing rate"), PERCENT),
        Column(_("External organisations served"), COUNT),
        Column(_("Income from external service"), MONEY),
    ]


def _sharing_cells(x: f.Figures) -> list:
    return [
        f.hours(x.external_s),
        f.hours(x.used_s),
        f.percent(x.sharing_rate),
        len(x.external_organisations),
        _yuan(x.external_income_fen),
    ]


def sharing_table(
    named_figures: list[tuple[str, f.Figures]], first_column: str, total=None
) -> Table:
    table = Table("sharing", _("Open sharing"), [Column(first_column)] + _sharing_columns())
    for name, figures in named_figures:
        table.rows.append([name] + _sharing_cells(figures))
    if total is not None:
        table.footer = [total[0]] + _sharing_cells(total[1])
    return table


def bureau_table(report, locale: str) -> Table:
    """The bureau's annual form: one row per resource with asset data or a quota class."""
    table = Table(
        "bureau",
        _("Annual form for the bureau"),
        [
            Column(_("Asset number")),
            Column(_("Resource")),
            Column(_("Class")),
            Column(_("Original value"), MONEY),
            Column(_("Purchase date")),
            Column(_("Funding source")),
            Column(_("Effective hours"), HOURS),
            Column(_("Quota hours"), HOURS),
            Column(_("Quota reached"), PERCENT),
            Column(_("External service hours"), HOURS),
            Column(_("Sharing rate"), PERCENT),
            Column(_("Income"), MONEY),
            Column(_("Rate of return"), PERCENT),
        ],
    )
    classes = {"general": _("General"), "specialised": _("Specialised")}
    for row in report.rows:
        resource = row.resource
        if not (resource.asset_number or resource.original_value_fen or resource.asset_class):
            continue
        quota = row.quota_hours
        table.rows.append(
            [
                resource.asset_number,
                resource.name(locale),
                classes.get(resource.asset_class, ""),
                _yuan(resource.original_value_fen)
                if resource.original_value_fen is not None
                else None,
                resource.purchased_on.isoformat() if resource.purchased_on else "",
                resource.funding_source,
                f.hours(row.figures.used_s),
                round(float(quota), 2) if quota is not None else None,
                f.percent(Fraction(row.figures.used_s, 3600) / quota) if quota else None,
                f.hours(row.figures.external_s),
                f.percent(row.figures.sharing_rate),
                _yuan(row.figures.invoiced_fen),
                f.percent(row.return_rate),
            ]
        )
    return table


def utilisation_table(report, locale: str) -> Table:
    buckets = report.period.buckets
    table = Table(
        "utilisation",
        _("Utilisation over time"),
        [Column(_("Resource"))] + [Column(b, PERCENT) for b in buckets],
    )
    for row in report.rows:
        table.rows.append(
            [row.resource.name(locale)] + [f.percent(row.utilisation_in(b)) for b in buckets]
        )
    return table


def weekday_names() -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


def heat_map_table(report) -> Table:
    table = Table(
        "heatmap",
        _("Hours used by weekday and hour"),
        [Column(_("Weekday"))] + [Column(f"{h:02d}", HOURS) for h in range(24)],
    )
    for name, cells in zip(weekday_names(), report.heat_map, strict=True):
        table.rows.append([name] + [f.hours(s) for s in cells])
    return table


def revenue_table(report) -> Table:
    table = Table(
        "revenue",
        _("Revenue by month"),
        [
            Column(_("Month")),
            Column(_("Invoiced"), MONEY),
            Column(_("Estimated, not yet invoiced"), MONEY),
        ],
    )
    for month in report.period.months:
        table.rows.append(
            [
                month,
                _yuan(report.invoiced_by_month.get(month, 0)),
                _yuan(report.estimated_by_month.get(month, 0)),
            ]
        )
    table.footer = [
        _("Total"),
        _yuan(sum(report.invoiced_by_month.get(m, 0) for m in report.period.months)),
        _yuan(sum(report.estimated_by_month.get(m, 0) for m in report.period.months)),
    ]
    return table


def organisation_table(report, locale: str) -> Table:
    table = Table(
        "usage",
        _("Usage and spend"),
        [
            Column(_("Carrier")),
            Column(_("Resource")),
            Column(_("Booked hours"), HOURS),
            Column(_("Used hours"), HOURS),
            Column(_("Invoiced"), MONEY),
            Column(_("Voucher subsidy"), MONEY),
            Column(_("To pay"), MONEY),
        ],
    )

    def cells(booked_s: int, used_s: int, invoiced_fen: int, subsidy_fen: int) -> list:
        return [
            f.hours(booked_s),
            f.hours(used_s),
            _yuan(invoiced_fen),
            _yuan(subsidy_fen),
            _yuan(invoiced_fen - subsidy_fen),
        ]

    for use in report.rows:
        table.rows.append(
            [use.carrier.name(locale), use.resource.name(locale)]
            + cells(use.booked_s, use.used_s, use.invoiced_fen, use.subsidy_fen)
        )
    if report.unattributed_fen:
        table.rows.append(
            ["", _("Adjustments and credit notes")] + cells(0, 0, report.unattributed_fen, 0)
        )
    total = report.total
    table.footer = [_("Total"), ""] + cells(
        total.booked_s, total.used_s, total.invoiced_fen, total.subsidy_fen
    )
    return table


def project_table(report) -> Table:
    """Booked hours and issued spend per project, for R&D expense records."""
    table = Table(
        "projects",
        _("By project"),
        [
            Column(_("Project")),
            Column(_("Booked hours"), HOURS),
            Column(_("Invoiced"), MONEY),
            Column(_("of which VAT"), MONEY),
            Column(_("Voucher subsidy"), MONEY),
            Column(_("To pay"), MONEY),
        ],
    )
    for name in sorted(report.by_project, key=lambda n: (n == "", n)):
        use = report.by_project[name]
        table.rows.append(
            [
                name or _("(no project)"),
                f.hours(use.booked_s),
                _yuan(use.invoiced_fen),
                _yuan(use.tax_fen),
                _yuan(use.subsidy_fen),
                _yuan(use.paid_fen),
            ]
        )
    return table


def to_csv(table: Table) -> str:
    return csv_text([c.title for c in table.columns], table.all_rows())


def to_xlsx(tables: list[Table]) -> bytes:
    book = new_workbook()
    for table in tables:
        sheet = book.create_sheet(title=table.title[:31])
        append_row(sheet, [c.title for c in table.columns])
        formats = {
            index: fmt
            for index, column in enumerate(table.columns, start=1)
            if (fmt := {MONEY: "#,##0.00", HOURS: "#,##0.00", PERCENT: '0.0"%"'}.get(column.kind))
        }
        for row in table.all_rows():
            append_row(sheet, row, formats)
    return workbook_bytes(book)
