from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_login.config import COOKIE_NAME

from booking.accounts import service
from booking.accounts.forms import (
    ApiTokenForm,
    ChangePasswordForm,
    EmptyForm,
    ForgotPasswordForm,
    LanguageForm,
    LoginForm,
    MailPreferenceForm,
    RegisterForm,
    ResetPasswordForm,
)
from booking.accounts.service import mail_topics_wanted
from booking.languages import LOCALES, spoken_locale
from booking.problems import ServiceError
from booking.security import limit, safe_next
from booking.web import show_problems

bp = Blueprint("accounts", __name__, url_prefix="/account")


def _next_url() -> str:
    return safe_next(request.args.get("next"), url_for("catalogue.index"))


@bp.route("/register", methods=["GET", "POST"])
@limit("RATELIMIT_REGISTER")
def register():
    form = RegisterForm()
    valid = form.validate_on_submit()
    if form.is_submitted():
        # The account rules too, whatever the form's own checks found: every error at once
        # (#16: a weak password showed only after the passwords matched).
        problems = [
            p
            for p in service.registration_problems(
                form.email.data, form.display_name.data, form.password.data
            )
            if not getattr(form, p.field).errors
        ]
        if problems:
            show_problems(form, ServiceError(problems))
            valid = False
    if valid:
        try:
            locale = session.get("locale") if session.get("locale") in LOCALES else None
            user = service.register(
                form.email.data, form.display_name.data, form.password.data, locale
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            login_user(user)
            flash(_("Welcome! Your account has been created."), "success")
            return redirect(url_for("catalogue.index"))
    return render_template("accounts/register.html", form=form), 422 if form.is_submitted() else 200


@bp.route("/login", methods=["GET", "POST"])
@limit("RATELIMIT_SIGN_IN")
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.email.data, form.password.data)
        except ServiceError as error:
            show_problems(form, error)
            return render_template("accounts/login.html", form=form), error.status
        if user is None:
            flash(_("E-mail or password is not correct."), "error")
            return render_template("accounts/login.html", form=form), 422
        login_user(user, remember=form.remember.data)
        flash(_("You are signed in."), "success")
        return redirect(_next_url())
    return render_template("accounts/login.html", form=form), 422 if form.is_submitted() else 200


@bp.post("/logout")
def logout():
    if EmptyForm().validate_on_submit():
        logout_user()
        flash(_("You are signed out."), "success")
    return redirect(url_for("catalogue.index"))


@bp.route("/forgot", methods=["GET", "POST"])
@limit("RATELIMIT_PASSWORD_RESET")
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data)
        flash(
            _(
                "If an account exists for that address, we have sent it a link to reset the password."
            ),
            "success",
        )
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limit("RATELIMIT_PASSWORD_RESET")
def reset_password(token: str):
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            service.reset_password(token, form.password.data)
        except ServiceError as error:
            show_problems(form, error)
        else:
            flash(_("Your password has been changed. Please sign in."), "success")
            return redirect(url_for("accounts.login"))
    status = 422 if form.is_submitted() else 200
    return render_template("accounts/reset.html", form=form), status


@bp.route("/settings", methods=["GET"])
@login_required
def settings():
    return _render_settings()


def _render_settings(status: int = 200, **forms):
    """The settings page. Each form keeps its own state: the one just submitted comes back as
    submitted (with its errors), and the others show what is saved. Left to itself, a Flask-WTF
    form reads the current POST, so after a failed password change the mail boxes came back
    unticked and saving them would have turned all mail off (#16)."""
    saved = {"formdata": None}  # not the request's form: what the user has saved
    return (
        render_template(
            "accounts/settings.html",
            language_form=forms.get("language_form")
            or LanguageForm(locale=spoken_locale(current_user.locale), **saved),
            password_form=forms.get("password_form") or ChangePasswordForm(**saved),
            token_form=forms.get("token_form") or ApiTokenForm(**saved),
            tokens=service.list_api_tokens(current_user),
            new_token=forms.get("new_token"),
            empty_form=EmptyForm(),
            mail_form=forms.get("mail_form")
            or MailPreferenceForm(
                mail_notifications=current_user.mail_notifications,
                topics=mail_topics_wanted(current_user),
                **saved,
            ),
        ),
        status,
    )


@bp.post("/settings/language")
@login_required
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        service.set_locale(current_user, form.locale.data)
        session["locale"] = form.locale.data
        flash(_("Language saved."), "success")
        return redirect(url_for("accounts.settings"))
    return _render_settings(422, language_form=form)


@bp.post("/settings/password")
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current_password.data, form.password.data)
        except ServiceError as error:
            show_problems(form, error)
        else:
            # Every session names the password (User.get_id): the others have ended, and this
            # one (with its "keep me signed in" cookie, if it had one) is renewed with the new.
            remembered = (
                current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) in request.cookies
            )
            login_user(current_user._get_current_object(), remember=remembered)
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("accounts.settings"))
    return _render_settings(422, password_form=form)


def _end_of(day):
    """A token chosen to expire on a day works to the end of that day, in the user's zone."""
    if day is None:
        return None
    zone = ZoneInfo(current_app.config["DEFAULT_CARRIER_TIMEZONE"])
    return datetime.combine(day + timedelta(days=1), time(0), zone)


@bp.post("/settings/tokens")
@limit("RATELIMIT_API_TOKENS")
@login_required
def create_token():
    form = ApiTokenForm()
    if form.validate_on_submit():
        try:
            _token, secret = service.create_api_token(
                current_user, form.name.data, form.scopes.data or [], _end_of(form.expires_on.data)
            )
        except ServiceError as error:
            show_problems(form, error)
        else:
            # Shown once, never stored in clear.
            return _render_settings(201, new_token=secret)
    return _render_settings(422, token_form=form)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if EmptyForm().validate_on_submit():
        service.revoke_api_token(current_user, token_id)
        flash(_("The token has been revoked."), "success")
    return redirect(url_for("accounts.settings"))


@bp.post("/settings/mail")
@login_required
def set_mail_preference():
    form = MailPreferenceForm()
    if form.validate_on_submit():
        try:
            # No box ticked means no topic by mail; a form without the list keeps the choice.
            listed = request.form.get("topics_listed") == "1"
            service.set_mail_preference(
                current_user,
                bool(form.mail_notifications.data),
                list(form.topics.data or []) if listed else None,
            )
        except ServiceError as error:
            show_problems(None, error)
            return _render_settings(422, mail_form=form)
        flash(_("Mail preference saved."), "success")
    return redirect(url_for("accounts.settings"))
