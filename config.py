"""Configuration classes, read from the environment (12-factor style)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def feed_window_days(scope: str, default: tuple[int, int]) -> tuple[int, int]:
    """(past, future) days from CALENDAR_FEED_WINDOW_<SCOPE>, e.g. "7,92"; refused at start
    when malformed rather than serving unbounded feeds."""
    name = f"CALENDAR_FEED_WINDOW_{scope.upper()}"
    text = os.environ.get(name)
    if text is None:
        return default
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() and int(p) <= 3660 for p in parts):
        raise ValueError(f'{name} must be "past,future" in whole days (0-3660), not {text!r}')
    return int(parts[0]), int(parts[1])


class Config:
    BOOKING_ENV = os.environ.get("BOOKING_ENV", "development")
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-secret-change-me")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'booking.db'}"
    )
    # No pool_pre_ping: on PostgreSQL booking.liveness checks a pooled connection without a
    # round trip; a SQLite file has no connection to lose.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # PostgreSQL connections kept by each process (gunicorn worker, scheduler): a worker with
    # N threads needs N at most; workers × (size + overflow) must stay under the server's
    # max_connections (or PgBouncer's pool). See docs/deploy.md "Scale-out".
    DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "5"))
    DATABASE_POOL_MAX_OVERFLOW = int(os.environ.get("DATABASE_POOL_MAX_OVERFLOW", "5"))
    DATABASE_POOL_RECYCLE = int(os.environ.get("DATABASE_POOL_RECYCLE", "1800"))
    # Behind PgBouncer in transaction mode (before 1.21): no server-side prepared statements.
    DATABASE_PGBOUNCER_TRANSACTION_MODE = _env_bool("DATABASE_PGBOUNCER_TRANSACTION_MODE")
    # SQLite: transactions of the CLI and the scheduler begin IMMEDIATE (they write). The test
    # suite turns this off for its own long-lived session, which only reads between requests,
    # so that it never holds the write lock that a server or scheduler process under test needs.
    SQLITE_IMMEDIATE_OUTSIDE_REQUESTS = True
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session

    # Language and time: the UI speaks these; carriers default to Shanghai time.
    LANGUAGES = ["zh_Hans_CN", "en"]
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    DEFAULT_CARRIER_TIMEZONE = "Asia/Shanghai"

    # Mail: "console" prints mails (development), "smtp" sends them.
    MAIL_BACKEND = os.environ.get("MAIL_BACKEND", "console")
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "localhost")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "noreply@booking.local")
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "10"))

    WAITLIST_OFFER_MINUTES = 120
    # Every absolute link (mails, feeds, .ics, reset and invitation links) starts with this,
    # never with the request's Host header. Required in production.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    # The scheduler's intervals in seconds, per job, instead of the built-in minutes
    # ("mail=5,reminders=60"): for tests and for operators who want mail out sooner.
    SCHEDULER_INTERVALS = os.environ.get("SCHEDULER_INTERVALS", "")
    NO_SHOW_GRACE_MINUTES = 15
    # A walk-up session still open this long is closed automatically (and people told).
    WALK_UP_FORGOTTEN_HOURS = int(os.environ.get("WALK_UP_FORGOTTEN_HOURS", "8"))
    # Sign-in lockout per e-mail address: this many failures within this many minutes.
    LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
    LOGIN_FAILURE_MINUTES = int(os.environ.get("LOGIN_FAILURE_MINUTES", "15"))
    REMINDER_LEADS_MINUTES = (24 * 60, 60)

    # Calendar feeds: days back and ahead each kind of feed covers (past, future), so that no
    # feed grows with a carrier's history; env CALENDAR_FEED_WINDOW_<SCOPE>="past,future".
    CALENDAR_FEED_WINDOWS = {
        scope: feed_window_days(scope, default)
        for scope, default in (
            ("user", (90, 365)),
            ("organisation", (30, 180)),
            ("resource", (14, 180)),
            ("carrier", (7, 92)),
        )
    }
    CALENDAR_FEED_KEEP_CANCELLED_DAYS = 30
    # Rendered feeds are kept in the database (table feed_bodies) for every worker; a feed
    # nobody fetched for this many days is dropped from it.
    CALENDAR_FEED_CACHE_DAYS = int(os.environ.get("CALENDAR_FEED_CACHE_DAYS", "7"))
    # A feed whose newest change is younger than this is rendered for each reader and not kept
    # (longer than any booking transaction, and than the hosts' clocks drift apart).
    CALENDAR_FEED_SETTLE_SECONDS = int(os.environ.get("CALENDAR_FEED_SETTLE_SECONDS", "60"))
    CALENDAR_REFRESH_MINUTES = 60
    CALENDAR_UID_DOMAIN = os.environ.get("CALENDAR_UID_DOMAIN", "booking.local")
    # Calendar import: limits for fetching other people's calendars.
    CALENDAR_IMPORT_TIMEOUT = float(os.environ.get("CALENDAR_IMPORT_TIMEOUT", "10"))
    CALENDAR_IMPORT_MAX_BYTES = int(
        os.environ.get("CALENDAR_IMPORT_MAX_BYTES", str(5 * 1024 * 1024))
    )
    CALENDAR_IMPORT_MAX_REDIRECTS = 3
    CALENDAR_IMPORT_MAX_EVENTS = 20000
    CALENDAR_IMPORT_DAYS_AHEAD = 366
    # Seconds one calendar may take to read (parse and expand), upload or refresh alike.
    CALENDAR_IMPORT_TIME_BUDGET = float(os.environ.get("CALENDAR_IMPORT_TIME_BUDGET", "10"))
    # Refuse loopback, private and link-local addresses (no SSRF) unless this is set.
    CALENDAR_IMPORT_ALLOW_PRIVATE = _env_bool("CALENDAR_IMPORT_ALLOW_PRIVATE")
    # Webhook endpoints: public https addresses only (tests allow loopback), 10 s per attempt.
    WEBHOOK_ALLOW_PRIVATE = _env_bool("WEBHOOK_ALLOW_PRIVATE")
    WEBHOOK_REQUIRE_HTTPS = True  # tests turn it off for their plain-HTTP receiver
    WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "10"))

    # Resources' photos and documents (booking/storage.py): a directory on this host by
    # default; several hosts need one they share (docs/deploy.md).
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", "")  # empty: <instance>/uploads
    # Or an S3-compatible object store: UPLOAD_STORAGE=s3 and its bucket (and, for a store
    # other than AWS, its endpoint and region); credentials come from the environment.
    UPLOAD_STORAGE = os.environ.get("UPLOAD_STORAGE", "directory")
    S3_BUCKET = os.environ.get("S3_BUCKET", "")
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "")
    S3_REGION = os.environ.get("S3_REGION", "")

    # Requests and cookies (docs/security.md, docs/deploy.md).
    # The largest request body (uploaded calendars and usage files included): 413 beyond it.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(16 * 1024 * 1024)))
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    # Redirect http to https and send HSTS; usually the proxy in front does this.
    FORCE_HTTPS = _env_bool("FORCE_HTTPS", False)
    # Host names this site answers to (comma-separated); others get 400. Empty: any.
    TRUSTED_HOSTS = [
        h.strip() for h in os.environ.get("TRUSTED_HOSTS", "").split(",") if h.strip()
    ] or None
    # How many proxies in front set X-Forwarded-For/-Proto/-Host (0: trust none of them).
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "0"))
    # Rate limits (Flask-Limiter): memory:// per process by default; a Redis URL shares the
    # counts between workers and hosts (redis://127.0.0.1:6379/0).
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # A moving window counts the last minute whatever the clock says: a fixed window forgets
    # every count at :00, so five guesses at :59 and five at :00 would all pass a "5 per
    # minute" limit (and a test that straddled :00 saw no refusal).
    RATELIMIT_STRATEGY = os.environ.get("RATELIMIT_STRATEGY", "moving-window")
    RATELIMIT_SIGN_IN = os.environ.get("RATELIMIT_SIGN_IN", "30 per minute")
    RATELIMIT_REGISTER = os.environ.get("RATELIMIT_REGISTER", "30 per hour")
    RATELIMIT_PASSWORD_RESET = os.environ.get("RATELIMIT_PASSWORD_RESET", "10 per hour")
    RATELIMIT_API_TOKENS = os.environ.get("RATELIMIT_API_TOKENS", "20 per hour")
    RATELIMIT_API = os.environ.get("RATELIMIT_API", "600 per minute")
    # Refused API tokens per client address (guessing tokens).
    RATELIMIT_API_BAD_TOKENS = os.environ.get("RATELIMIT_API_BAD_TOKENS", "30 per minute")

    PASSWORD_RESET_MAX_AGE = 3600  # seconds a reset link stays valid
    INVITATION_DAYS = 14
    CATALOGUE_PAGE_SIZE = 24


class DevelopmentConfig(Config):
    DEBUG = False  # the reloader is opt-in (FLASK_DEBUG=1); demo stays stable


class ProductionConfig(Config):
    MAIL_BACKEND = os.environ.get("MAIL_BACKEND", "smtp")
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)


class TestingConfig(Config):
    TESTING = True
    # Every API response is checked against its model in the OpenAPI document.
    API_VALIDATE_RESPONSES = True
    SECRET_KEY = "test-secret"
    WTF_CSRF_ENABLED = True
    MAIL_BACKEND = "smtp"


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def config_for(env: str | None = None) -> type[Config]:
    return CONFIGS.get(env or os.environ.get("BOOKING_ENV", "development"), DevelopmentConfig)
