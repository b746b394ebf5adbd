"""Shared equipment, compute and licence booking for incubation carriers."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import Flask, g
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing import IntegerConverter

from config import config_for


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config_for())
    if overrides:
        app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["BOOKING_ENV"] == "production" and app.config["SECRET_KEY"].startswith("dev-"):
        raise RuntimeError("Set SECRET_KEY in production: sessions and reset links depend on it.")
    if not app.config["PUBLIC_BASE_URL"].startswith(("http://", "https://")):
        raise RuntimeError(
            "Set PUBLIC_BASE_URL (e.g. https://booking.example.cn): every link in mails and "
            "feeds is built from it."
        )

    from booking import autocommit_reads, errors, i18n, liveness, security, transaction_end  # noqa: F401
    from booking.extensions import babel, csrf, db, login_manager, migrate

    _pool_options(app)
    db.init_app(app)
    transaction_end.init_app(app)  # after db.init_app: its teardown runs first
    migrate.init_app(
        app,
        db,
        render_as_batch=True,
        compare_type=True,
        directory=str(Path(__file__).resolve().parent.parent / "migrations"),
    )
    csrf.init_app(app)
    from booking.forms import draw_fields_quicker

    draw_fields_quicker()
    security.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_domain="messages")
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message_category = "info"
    from flask_babel import lazy_gettext as _l

    login_manager.login_message = _l("Please sign in to see this page.")

    @login_manager.user_loader
    def load_user(user_id: str):
        from booking.accounts.service import signed_in_user

        found = signed_in_user(user_id)
        if found is None:
            return None
        user, unread = found
        g.unread_notifications = (user.id, unread)  # for the menu (navigation, below)
        return user

    _register_models()
    app.url_map.converters["int"] = DatabaseIntConverter  # before any route is added
    _register_blueprints(app)
    i18n.init_app(app)
    errors.init_app(app)
    _redact_feed_secrets_in_logs()

    @app.get("/healthz")
    def healthz():
        # For load balancers and as the benchmarks' trivial endpoint: no database, no session.
        return "ok", 200, {"Content-Type": "text/plain"}

    @app.context_processor
    def navigation():
        from flask import has_request_context

        if not has_request_context():  # mails rendered by the scheduler
            return {"nav_carriers": [], "g": g, "unread_count": 0}
        from booking.permissions import operated_carriers

        unread = 0
        if current_user.is_authenticated:
            from booking.notify.service import unread_count

            # Read with the session's sign-in (load_user); counted here when the user signed
            # in by other means in this request (the sign-in form, an API token).
            counted_for, unread = g.get("unread_notifications", (None, 0))
            if counted_for != current_user.id:
                unread = unread_count(current_user)
        return {"nav_carriers": operated_carriers(current_user), "g": g, "unread_count": unread}

    return app


class DatabaseIntConverter(IntegerConverter):
    """`<int:…>` in every route: an id beyond what a database INTEGER holds (32 bits on
    PostgreSQL; inputs.MAX_ID) is "not found" (404), never an overflow (a 500) nor a "method not
    allowed" (werkzeug answers 405 when a path's only matching rules refuse their converter)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        from werkzeug.exceptions import NotFound

        from booking.inputs import MAX_ID

        number = super().to_python(value)
        if not 1 <= number <= MAX_ID:
            raise NotFound()
        return number


def _register_models() -> None:
    # Import every model module so metadata (and Alembic) knows all tables.
    from booking.accounts import models as _a  # noqa: F401
    from booking.audit import models as _audit  # noqa: F401
    from booking.billing import invoice_models as _inv  # noqa: F401
    from booking.billing import models as _bill  # noqa: F401
    from booking.billing import voucher_models as _vouchers  # noqa: F401
    from booking.bookings import models as _b  # noqa: F401
    from booking.calendars import models as _cal  # noqa: F401
    from booking.carriers import models as _c  # noqa: F401
    from booking.catalogue import models as _r  # noqa: F401
    from booking.incidents import models as _incidents  # noqa: F401
    from booking.jobs import models as _jobs  # noqa: F401
    from booking.metering import models as _m  # noqa: F401
    from booking.notify import models as _n  # noqa: F401
    from booking.orgs import models as _o  # noqa: F401
    from booking.webhooks import models as _webhooks  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    import booking.api.docs  # noqa: F401 - adds /api/v1/openapi.json
    import booking.billing.api  # noqa: F401 - adds /api/v1/invoices and vouchers
    import booking.bookings.api  # noqa: F401 - adds the booking routes to the API blueprint
    import booking.bookings.grid_views  # noqa: F401 - the month and side-by-side views
    import booking.bookings.mine_views  # noqa: F401 - "My bookings" on the bookings blueprint
    import booking.bookings.operate_api  # noqa: F401 - approvals, outages, grants, waitlist
    import booking.bookings.waitlist  # noqa: F401 - offers freed capacity (a signal listener)
    import booking.calendars.api  # noqa: F401 - adds /api/v1/me/feeds
    import booking.catalogue.api  # noqa: F401 - resources for a carrier's staff
    import booking.metering.api  # noqa: F401 - adds /api/v1/usage
    import booking.reports.api  # noqa: F401 - report data
    from booking.accounts.cli import cli as api_token_cli
    from booking.accounts.cli import users_cli
    from booking.accounts.views import bp as accounts_bp
    from booking.api.docs import docs_bp as api_docs_bp
    from booking.api.views import bp as api_bp
    from booking.audit.views import admin_bp as platform_audit_bp
    from booking.audit.views import bp as audit_bp
    from booking.billing.cli import cli as invoices_cli
    from booking.billing.invoice_views import bp as invoices_bp
    from booking.billing.invoice_views import org_bp as org_invoices_bp
    from booking.billing.operate_views import bp as rates_bp
    from booking.billing.voucher_views import admin_bp as vouchers_admin_bp
    from booking.billing.voucher_views import bp as voucher_claims_bp
    from booking.bookings.cli import cli as bookings_cli
    from booking.bookings.operate_views import bp as carrier_bookings_bp
    from booking.bookings.views import bp as bookings_bp
    from booking.calendars.cli import cli as calendars_cli
    from booking.calendars.operate_views import bp as calendar_sources_bp
    from booking.calendars.views import bp as calendars_bp
    from booking.carriers.views import admin_bp
    from booking.carriers.views import bp as carrier_bp
    from booking.catalogue.operate_views import bp as resources_bp
    from booking.catalogue.views import bp as catalogue_bp
    from booking.demo.cli import cli as demo_cli
    from booking.home.views import bp as home_bp
    from booking.incidents.views import bp as incidents_bp
    from booking.incidents.views import operate_bp as carrier_incidents_bp
    from booking.jobs.cli import cli as jobs_cli
    from booking.jobs.cli import scheduler_cli
    from booking.jobs.views import bp as jobs_bp
    from booking.metering.operate_views import bp as carrier_usage_bp
    from booking.metering.views import bp as metering_bp
    from booking.orgs.views import bp as orgs_bp
    from booking.reports.views import admin_bp as platform_reports_bp
    from booking.reports.views import carrier_bp as carrier_reports_bp
    from booking.reports.views import org_bp as org_reports_bp
    from booking.tenancy import operate_blueprint
    from booking.webhooks.views import admin_bp as platform_webhooks_bp
    from booking.webhooks.views import bp as webhooks_bp

    operate = operate_blueprint(
        carrier_bp,
        resources_bp,
        carrier_bookings_bp,
        calendar_sources_bp,
        carrier_usage_bp,
        rates_bp,
        invoices_bp,
        voucher_claims_bp,
        carrier_reports_bp,
        audit_bp,
        webhooks_bp,
        carrier_incidents_bp,
    )
    for blueprint in (
        catalogue_bp,
        incidents_bp,
        bookings_bp,
        accounts_bp,
        orgs_bp,
        admin_bp,
        operate,
        api_bp,
        api_docs_bp,
        api_token_cli,
        users_cli,
        demo_cli,
        bookings_cli,
        calendars_bp,
        calendars_cli,
        metering_bp,
        org_invoices_bp,
        vouchers_admin_bp,
        jobs_bp,
        jobs_cli,
        scheduler_cli,
        invoices_cli,
        platform_reports_bp,
        platform_audit_bp,
        platform_webhooks_bp,
        org_reports_bp,
        home_bp,
    ):
        app.register_blueprint(blueprint)


class _RedactFeedSecrets(logging.Filter):
    """Feed links are secrets: access logs show only their first characters."""

    pattern = re.compile(r"(/feeds/cal_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/feeds/" in message:
            record.msg, record.args = self.pattern.sub(r"\1…", message), ()
        return True


def _redact_feed_secrets_in_logs() -> None:
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactFeedSecrets) for f in logger.filters):
            logger.addFilter(_RedactFeedSecrets())


def _pool_options(app: Flask) -> None:
    """The PostgreSQL connection pool from the DATABASE_POOL_* settings (SQLite keeps
    SQLAlchemy's defaults); options given explicitly in SQLALCHEMY_ENGINE_OPTIONS win."""
    if not str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        return
    options = {
        "pool_size": app.config["DATABASE_POOL_SIZE"],
        "max_overflow": app.config["DATABASE_POOL_MAX_OVERFLOW"],
        "pool_recycle": app.config["DATABASE_POOL_RECYCLE"],
    }
    given = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    if app.config["DATABASE_PGBOUNCER_TRANSACTION_MODE"]:
        # Merged with connect_args given explicitly, not replaced by them.
        options["connect_args"] = {"prepare_threshold": None, **given.pop("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, **given}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # Enforce foreign keys and let readers proceed while one writer works. pysqlite's own
    # transaction handling is switched off so that _sqlite_begin decides how a transaction
    # begins (see booking.locking).
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    if conn.dialect.name == "sqlite":
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # asked for no transaction at all
        immediate = conn.get_execution_options().get("sqlite_immediate")
        if immediate is None:
            immediate = _may_write()
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _may_write() -> bool:
    """Whether a new SQLite transaction may write, so must begin IMMEDIATE.

    A deferred transaction that has read and then writes fails at once with "database is
    locked" when another connection committed in between (SQLite cannot upgrade a stale
    snapshot, and the busy timeout does not apply). So every transaction that may write takes
    the write lock up front and waits its turn: those of state-changing requests, and those
    of the CLI and the scheduler. Reads of GET requests stay deferred and never wait (WAL);
    a GET that must write asks for it explicitly (booking.locking.begin_write)."""
    from flask import current_app, has_app_context, has_request_context, request

    from booking.security import SAFE_METHODS

    if has_request_context():
        return request.method not in SAFE_METHODS
    if has_app_context():
        return current_app.config["SQLITE_IMMEDIATE_OUTSIDE_REQUESTS"]
    return True
