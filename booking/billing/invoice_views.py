"""Invoice pages: operators run, adjust, issue, credit and export; organisation managers read."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, StringField
from wtforms.validators import InputRequired, Optional

from booking.accounts.forms import EmptyForm
from booking.billing import fapiao, ledger
from booking.billing import invoices as service
from booking.billing.documents import invoice_pdf, invoices_xlsx
from booking.billing.labels import TIER_NAMES
from booking.exports import XLSX_TYPE, content_disposition
from booking.forms import REQUIRED_MESSAGE
from booking.inputs import csv_text, parse_month
from booking.languages import current_locale
from booking.locking import read_snapshot
from booking.problems import ServiceError
from booking.web import download, fetch_page, page_arg, page_count, show_problems

bp = Blueprint("invoices", __name__)  # under /operate/<code>/
org_bp = Blueprint("org_invoices", __name__)

LINE_KINDS = {
    "booking": _l("booking"),
    "usage": _l("use without booking"),
    "no_show": _l("no-show fee"),
    "late_cancel": _l("late-cancellation fee"),
    "adjustment": _l("adjustment"),
}


class RunForm(FlaskForm):
    period = StringField(_l("Period (YYYY-MM)"), validators=[InputRequired(REQUIRED_MESSAGE)])


class AdjustForm(FlaskForm):
    description = StringField(_l("Description"))
    amount = StringField(
        _l("Amount in yuan (negative for a discount)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED_MESSAGE)])


class PaymentForm(FlaskForm):
    amount = StringField(_l("Amount received (yuan)"), validators=[InputRequired(REQUIRED_MESSAGE)])
    paid_on = DateField(_l("Received on"), validators=[InputRequired(REQUIRED_MESSAGE)])
    reference = StringField(_l("Bank reference"), validators=[Optional()])

    def __init__(self, *args, **kwargs):  # its own ids beside the credit form's "amount"
        kwargs.setdefault("prefix", "payment")
        super().__init__(*args, **kwargs)


class FapiaoForm(FlaskForm):
    number = StringField(
        _l("Fapiao number (发票号码)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    issued_on = DateField(_l("Fapiao date"), validators=[InputRequired(REQUIRED_MESSAGE)])

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "fapiao")
        super().__init__(*args, **kwargs)


class FapiaoImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED_MESSAGE)])


class CreditForm(FlaskForm):
    amount = StringField(
        _l("Amount to credit (yuan)"), validators=[InputRequired(REQUIRED_MESSAGE)]
    )
    reason = StringField(_l("Reason"), validators=[InputRequired(REQUIRED_MESSAGE)])


def _today():
    return datetime.now(ZoneInfo(g.carrier.timezone)).date()


INVOICES_PER_PAGE = 50


def _list(form=None, status=200, import_form=None):
    """The invoice page: the run form, and the invoices of one period or all, 50 a page."""
    if form is None:
        form = RunForm(formdata=None)
        form.period.data = datetime.now(ZoneInfo(g.carrier.timezone)).strftime("%Y-%m")
    period = request.args.get("period") or None
    page = page_arg(request.args, maximum=100_000)
    try:
        invoices, total, page = fetch_page(
            lambda n: service.carrier_invoice_list(g.carrier, period, n, INVOICES_PER_PAGE),
            page,
            INVOICES_PER_PAGE,
        )
    except ServiceError as error:  # a period that is not YYYY-MM
        show_problems(None, error)
        invoices, total, period, status = [], 0, None, error.status
    return render_template(
        "billing/invoices.html",
        form=form,
        invoices=invoices,
        total=total,
        page=page,
        pages=page_count(total, INVOICES_PER_PAGE),
        period=period,
        periods=service.invoice_periods(g.carrier),
        import_form=import_form or FapiaoImportForm(formdata=None),
        empty_form=EmptyForm(),
    ), status


@bp.get("/invoices")
def index():
    return _list()


@bp.post("/invoices/run")
def run():
    form = RunForm()
    if form.validate_on_submit():
        try:
            result = service.run_invoices(g.carrier, form.period.data, actor=current_user)
        except ServiceError as error:
            show_problems(form, error)
            return _list(form, 422)
        flash(
            _(
                "%(n)d lines added to %(m)d draft invoices.",
                n=result.lines_added,
                m=len(result.invoices),
            ),
            "success",
        )
        if result.unattributed:
            flash(
                _(
                    "%(n)d uses have no paying organisation and were not billed: attribute "
                    "them on the Usage page, then run again.",
                    n=result.unattributed,
                ),
                "error",
            )
        if result.unpriced:
            flash(
                _(
                    "%(n)d items were skipped because no rate was in force for them.",
                    n=result.unpriced,
                ),
                "error",
            )
        return redirect(url_for(".index"))
    return _list(form, 422)


def _detail(
    invoice, adjust_form=None, credit_form=None, payment_form=None, fapiao_form=None, status=200
):
    issued = invoice.status == "issued"
    return render_template(
        "billing/invoice.html",
        invoice=invoice,
        kinds=LINE_KINDS,
        tier_labels=TIER_NAMES,
        staff=True,
        adjust_form=adjust_form or AdjustForm(formdata=None),
        credit_form=credit_form or CreditForm(formdata=None),
        credit_left=service.credit_left(invoice) if issued and invoice.kind != "credit_note" else 0,
        credited=service.credited_fen(invoice) if issued else 0,
        balance=service.balance_fen(invoice) if issued and invoice.kind == "invoice" else None,
        payment_form=payment_form or PaymentForm(formdata=None),
        fapiao_form=fapiao_form or FapiaoForm(formdata=None),
        seller=service.seller_shown(invoice),
        seller_missing=service.missing_seller_details(g.carrier),
        empty_form=EmptyForm(),
    ), status


@bp.get("/invoices/<invoice_id>")
def detail(invoice_id):
    return _detail(service.invoice_of_carrier(g.carrier, invoice_id))


@bp.post("/invoices/<invoice_id>/lines/<line_id>/edit")
def edit_line(invoice_id, line_id):
    if EmptyForm().validate_on_submit():
        try:
            service.edit_line(
                current_user,
                g.carrier,
                invoice_id,
                line_id,
                description=request.form.get("description", ""),
                amount=request.form.get("amount") or None,
                reason=request.form.get("reason", ""),
            )
            flash(_("The line was changed."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
            return _detail(service.invoice_of_carrier(g.carrier, invoice_id), status=error.status)
    return redirect(url_for(".detail", invoice_id=invoice_id))


@bp.post("/invoices/<invoice_id>/lines/<line_id>/remove")
def remove_line(invoice_id, line_id):
    if EmptyForm().validate_on_submit():
        try:
            service.remove_line(
                current_user, g.carrier, invoice_id, line_id, request.form.get("reason", "")
            )
            flash(_("The line was removed."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
            return _detail(service.invoice_of_carrier(g.carrier, invoice_id), status=error.status)
    return redirect(url_for(".detail", invoice_id=invoice_id))


@bp.post("/invoices/<invoice_id>/adjust")
def adjust(invoice_id):
    invoice = service.invoice_of_carrier(g.carrier, invoice_id)
    form = AdjustForm()
    if form.validate_on_submit():
        try:
            service.adjust(
                current_user,
                g.carrier,
                invoice.id,
                form.description.data,
                form.amount.data,
                form.reason.data,
            )
        except ServiceError as error:
            show_problems(form, error)
            return _detail(invoice, adjust_form=form, status=error.status)
        flash(_("Line added."), "success")
        return redirect(url_for(".detail", invoice_id=invoice.id))
    return _detail(invoice, adjust_form=form, status=422)


@bp.post("/invoices/<invoice_id>/issue")
def issue(invoice_id):
    if EmptyForm().validate_on_submit():
        try:
            invoice = service.issue(current_user, g.carrier, invoice_id)
            flash(_("Invoice %(number)s issued.", number=invoice.number), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
    return redirect(url_for(".detail", invoice_id=invoice_id))


@bp.post("/invoices/<invoice_id>/credit")
def credit(invoice_id):
    invoice = service.invoice_of_carrier(g.carrier, invoice_id)
    form = CreditForm()
    if form.validate_on_submit():
        try:
            note = service.credit_note(
                current_user, g.carrier, invoice.id, form.amount.data, form.reason.data
            )
        except ServiceError as error:
            show_problems(form, error)
            return _detail(invoice, credit_form=form, status=error.status)
        flash(_("Credit note %(number)s issued.", number=note.number), "success")
        return redirect(url_for(".detail", invoice_id=note.id))
    return _detail(invoice, credit_form=form, status=422)


@bp.post("/invoices/<invoice_id>/payments")
def record_payment(invoice_id):
    invoice = service.invoice_of_carrier(g.carrier, invoice_id)
    form = PaymentForm()
    if form.validate_on_submit():
        try:
            service.record_payment(
                current_user,
                g.carrier,
                invoice.id,
                amount=form.amount.data,
                paid_on=form.paid_on.data,
                reference=form.reference.data or "",
            )
        except ServiceError as error:
            show_problems(form, error)
            return _detail(invoice, payment_form=form, status=error.status)
        flash(_("Payment recorded."), "success")
        return redirect(url_for(".detail", invoice_id=invoice.id))
    return _detail(invoice, payment_form=form, status=422)


@bp.post("/invoices/<invoice_id>/payments/<payment_id>/remove")
def remove_payment(invoice_id, payment_id):
    if EmptyForm().validate_on_submit():
        try:
            service.remove_payment(
                current_user, g.carrier, invoice_id, payment_id, request.form.get("reason", "")
            )
            flash(_("The payment was removed."), "success")
        except ServiceError as error:
            if error.status == 404:
                raise
            show_problems(None, error)
            return _detail(service.invoice_of_carrier(g.carrier, invoice_id), status=error.status)
    return redirect(url_for(".detail", invoice_id=invoice_id))


@bp.post("/invoices/<invoice_id>/fapiao")
def record_fapiao(invoice_id):
    invoice = service.invoice_of_carrier(g.carrier, invoice_id)
    form = FapiaoForm()
    if form.validate_on_submit():
        try:
            fapiao.record_fapiao(
                current_user, g.carrier, invoice.id, form.number.data, form.issued_on.data, _today()
            )
        except ServiceError as error:
            show_problems(form, error)
            return _detail(invoice, fapiao_form=form, status=error.status)
        flash(_("Fapiao number saved."), "success")
        return redirect(url_for(".detail", invoice_id=invoice.id))
    return _detail(invoice, fapiao_form=form, status=422)


@bp.get("/invoices/fapiao.xlsx")
def fapiao_batch():
    """Issued invoices without a fapiao yet, laid out for the 数电票 batch-issuing template."""
    period = request.args.get("period") or None
    if period:
        _month, problems = parse_month(period)
        if problems:
            raise ServiceError(problems, 422)
    basic, details = fapiao.batch_rows(fapiao.to_issue(g.carrier, period))
    return Response(
        fapiao.batch_workbook(basic, details),
        content_type=XLSX_TYPE,
        headers={
            "Content-Disposition": content_disposition(
                f"fapiao-{g.carrier.code}-{period or 'all'}.xlsx"
            )
        },
    )


@bp.post("/invoices/fapiao/import")
def fapiao_import():
    form = FapiaoImportForm()
    if not form.validate_on_submit():
        return _list(import_form=form, status=422)
    try:
        text, problems = csv_text(request.files["file"].read())
        if problems:
            raise ServiceError(problems, 422)
        count = fapiao.import_fapiao_numbers(current_user, g.carrier, text, _today())
    except ServiceError as error:
        show_problems(form, error)
        return _list(import_form=form, status=error.status)
    flash(_("%(n)d fapiao numbers saved.", n=count), "success")
    return redirect(url_for(".index"))


@bp.get("/invoices/export.csv")
def export():
    """Every line of the carrier's invoices (a period with ?period=), for accounting: the same
    columns as the Excel export's "lines" sheet."""
    period = request.args.get("period") or None
    zone = g.carrier.timezone
    read_snapshot()  # the ids and every batch read as of one moment
    ids = service.carrier_invoice_ids(g.carrier, period)  # a malformed period is a 422

    def rows():  # read and written batch by batch while the response streams
        invoices = service.invoices_by_batch(ids)
        return (
            ledger.as_csv_values(row)
            for row in ledger.line_rows(invoices, zone, internal_notes=True)
        )

    return download(
        "csv",
        f"invoices-{g.carrier.code}-{period or 'all'}",
        ledger.line_header(zone, internal_notes=True),
        rows,
    )


def _pdf_response(invoice):

    name = invoice.number or f"draft-{invoice.id}"
    return Response(
        invoice_pdf(
            invoice,
            current_locale(),
            service.balance_fen(invoice)
            if invoice.status == "issued" and invoice.kind == "invoice"
            else None,
        ),
        content_type="application/pdf",
        headers={"Content-Disposition": content_disposition(f"{name}.pdf", inline=True)},
    )


@bp.get("/invoices/<invoice_id>.pdf")
def pdf(invoice_id):
    return _pdf_response(service.invoice_of_carrier(g.carrier, invoice_id))


@bp.get("/invoices/export.xlsx")
def export_xlsx():

    period = request.args.get("period") or None
    read_snapshot()  # the ids and every batch read as of one moment
    ids = service.carrier_invoice_ids(g.carrier, period)  # a malformed period is a 422
    return Response(
        # Rows go to XlsxWriter's temporary files batch by batch; the finished file (an .xlsx is
        # a zip archive, complete only at its end) is then sent from memory.
        invoices_xlsx(
            service.invoices_by_batch(ids),
            g.carrier.timezone,
            service.credited_numbers(g.carrier),
            internal_notes=True,  # the carrier's staff only (this blueprint)
        ),
        content_type=XLSX_TYPE,
        headers={
            "Content-Disposition": content_disposition(
                f"invoices-{g.carrier.code}-{period or 'all'}.xlsx"
            )
        },
    )


@org_bp.get("/invoices/<int:invoice_id>.pdf")
@login_required
def org_pdf(invoice_id: int):
    return _pdf_response(service.organisation_invoice(current_user, invoice_id))


@org_bp.get("/organisations/<int:org_id>/invoices")
@login_required
def org_index(org_id: int):
    return render_template(
        "billing/org_invoices.html",
        invoices=service.organisation_invoices(current_user, org_id),
        org_id=org_id,
    )


@org_bp.get("/invoices/<int:invoice_id>")
@login_required
def org_detail(invoice_id: int):
    invoice = service.organisation_invoice(current_user, invoice_id)
    return render_template(
        "billing/invoice.html",
        invoice=invoice,
        kinds=LINE_KINDS,
        tier_labels=TIER_NAMES,
        staff=False,
        seller=service.seller_shown(invoice),
        credited=service.credited_fen(invoice),
        balance=service.balance_fen(invoice) if invoice.kind == "invoice" else None,
    )
