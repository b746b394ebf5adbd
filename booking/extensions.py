"""Extension objects, created unbound and initialised in create_app()."""

from functools import cached_property

from babel.support import NullTranslations
from flask import g
from flask_babel import Babel, Domain, get_locale
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK constraint: the column holds one of these values."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay readable after commit (no reload per attribute): a request's session is
# short-lived, and use cases that must see the latest row re-read it under their lock.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class QuickDomain(Domain):
    """Flask-Babel's message domain, with the translations found by the locale itself.
    Flask-Babel's own look-up asks for its request context again and spells the locale out
    as a string on every gettext call, and a page makes about ninety. The locale is read
    where Flask-Babel keeps it, which a force_locale block sets too (mails in the reader's
    language); get_locale() chooses it when nothing has yet in this request."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_locale: dict = {}

    def get_translations(self):
        try:
            # Where Flask-Babel keeps the locale it chose for this request (or the one a
            # force_locale block set): its get_locale() finds the context three times a call.
            locale = g._flask_babel.babel_locale
        except (AttributeError, RuntimeError):
            locale = None  # not chosen yet in this request, or no context at all
        if locale is None:  # also after a force_locale block that came first: it leaves None
            locale = get_locale()
        if locale is None:  # outside a request or app context, as Flask-Babel does
            return NullTranslations()
        found = self._by_locale.get(locale)
        if found is None:
            found = self._by_locale[locale] = super().get_translations()
        return found


class QuickBabel(Babel):
    @cached_property
    def domain_instance(self):
        return QuickDomain(domain=self.domain)

    def init_app(self, app, *args, **kwargs):
        super().init_app(app, *args, **kwargs)

        # The templates' _() and friends ask the domain directly: Flask-Babel's own find the
        # domain through the request context on every call (a page makes about ninety).
        def translations():
            return self.domain_instance.get_translations()

        app.jinja_env.install_gettext_callables(
            gettext=lambda s: translations().ugettext(s),
            ngettext=lambda s, p, n: translations().ungettext(s, p, n),
            pgettext=lambda c, s: translations().upgettext(c, s),
            npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
            newstyle=True,
        )


babel = QuickBabel()
