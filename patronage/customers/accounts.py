"""Customer-panel accounts: signing in, password resets and self-service edits of one's own profile.

A panel account is a ``CustomerProfile`` of the shop's environment: the shops of one environment share their
customers, so one password works in each of them. Staff accounts (Django users) are a separate world and
nothing here touches them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from patronage.core import clock
from patronage.core.errors import AuthenticationFailed, ErrorCollector, NotFound
from patronage.core.locking import lock
from patronage.core.throttle import SignInThrottle, Throttle
from patronage.core.throttle import TooManyAttempts as TooManyAttempts  # what account_authenticate raises
from patronage.workspace.models import Application, Environment

from .attributes import normalize_phone
from .consent import ConsentActor, consent_record
from .models import CustomerProfile
from .services import activity_touch

logger = logging.getLogger(__name__)

# Reset mails per address per window: enough for "it went to spam, send again", too few to flood a mailbox.
RESET_MAIL_LIMIT = 5
RESET_MAIL_WINDOW = dt.timedelta(minutes=15)
MAX_NAME_LENGTH = 255

EMAIL_SUBJECT_TEMPLATE = "panel/email/password_reset_subject.txt"
EMAIL_TEXT_TEMPLATE = "panel/email/password_reset.txt"
EMAIL_HTML_TEMPLATE = "panel/email/password_reset.html"

ResetLink = Callable[[str, str], str]
"""Builds the absolute URL of a reset link from the encoded profile id and the token."""


def shop_get(slug: str) -> Application:
    """The application (shop) a panel URL names, with its environment."""
    shop = Application.objects.select_related("environment").filter(slug=slug).first()
    if shop is None:
        raise NotFound(f"There is no shop {slug!r}")
    return shop


def _profile_by_email(environment: Environment, email: str) -> CustomerProfile | None:
    email = email.strip().lower()
    if not email:
        return None
    return (
        CustomerProfile.objects.annotate(email_ci=Lower("email"))
        .filter(environment=environment, email_ci=email)
        .first()
    )


# --- sign-in -----------------------------------------------------------------------------------------------


# Counted in the database by one atomic statement per attempt (core.throttle), shared by every process.
_sign_in = SignInThrottle.named("panel")
_reset_mails = Throttle("panel-reset", RESET_MAIL_LIMIT, RESET_MAIL_WINDOW)


def account_authenticate(
    *, environment: Environment, email: str, password: str, client_ip: str
) -> CustomerProfile:
    """The customer whose email (any case) and password match, with ``last_login`` recorded.

    Raises ``AuthenticationFailed`` with one message for every kind of mismatch, so the page never tells
    whether an address has an account, and ``TooManyAttempts`` (before any password check) after repeated
    failures for one email from one address, or for many emails from one address.
    """
    account = f"{environment.pk}:{email.strip().lower()}"
    _sign_in.attempt(account=account, address=client_ip, advice="or reset your password")
    profile = _profile_by_email(environment, email)
    if profile is None or not profile.password:
        # Hash anyway, so an unknown email takes as long as a known one and timing reveals nothing.
        make_password(password)
        profile = None
    elif not profile.check_password(password):
        profile = None
    if profile is None:
        raise AuthenticationFailed("The email or password is incorrect.")
    _sign_in.succeeded(account=account, address=client_ip)
    profile.last_login = clock.now()
    CustomerProfile.objects.filter(pk=profile.pk).update(last_login=profile.last_login)
    return profile


def session_auth_hash(profile: CustomerProfile) -> str:
    """Kept in the panel session; a new password changes it, which signs out every other session."""
    return salted_hmac(
        "patronage.customers.accounts.session_auth_hash", profile.password, algorithm="sha256"
    ).hexdigest()


def session_profile(*, environment: Environment, profile_id: object) -> CustomerProfile | None:
    if not isinstance(profile_id, int):
        return None
    return CustomerProfile.objects.filter(environment=environment, pk=profile_id).first()


# --- password reset ----------------------------------------------------------------------------------------


class PanelPasswordResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset tokens over a customer profile.

    The hash covers the password hash and last login, which both change once the link is used, and the
    email, which changes if the customer moves to another address; any of those kills older links.
    Django's generator and password validators only read ``pk``, ``password``, ``last_login`` and
    ``email``, which a profile has: hence the ``arg-type`` ignores where a profile stands in for a user.
    """

    key_salt = "patronage.customers.accounts.PanelPasswordResetTokenGenerator"

    def _make_hash_value(self, user: CustomerProfile, timestamp: int) -> str:  # type: ignore[override]
        login = "" if user.last_login is None else user.last_login.replace(microsecond=0, tzinfo=None)
        return f"{user.pk}|{user.password}|{login}|{timestamp}|{(user.email or '').lower()}"

    def _now(self) -> dt.datetime:
        # Naive UTC as the base class expects, read through our clock so tests can travel in time.
        return clock.now().astimezone(dt.UTC).replace(tzinfo=None)


password_reset_tokens = PanelPasswordResetTokenGenerator()


def encode_profile_id(profile: CustomerProfile) -> str:
    return urlsafe_base64_encode(force_bytes(profile.pk))


def password_reset_request(*, shop: Application, email: str, client_ip: str, link: ResetLink) -> None:
    """Mail a reset link if ``email`` has an account in the shop's environment; silently nothing otherwise.

    The caller shows the same answer either way. A customer with no password yet (made by the API or an
    import) gets the same kind of link to choose their first one. The mail goes out after commit.
    """
    profile = _profile_by_email(shop.environment, email)
    if profile is None or not profile.email:
        return
    if _reset_mails.take(_reset_mails.key(shop.environment_id, profile.pk)) is not None:
        logger.warning("Password reset mail limit reached for profile %s (from %s)", profile.pk, client_ip)
        return
    url = link(encode_profile_id(profile), password_reset_tokens.make_token(profile))  # type: ignore[arg-type]
    transaction.on_commit(lambda: _send_reset_mail(shop=shop, profile=profile, url=url))


def _send_reset_mail(*, shop: Application, profile: CustomerProfile, url: str) -> None:
    assert profile.email
    context = {
        "shop": shop,
        "profile": profile,
        "url": url,
        "first_password": not profile.password,
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = " ".join(render_to_string(EMAIL_SUBJECT_TEMPLATE, context).split())
    _, from_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(EMAIL_TEXT_TEMPLATE, context),
        from_email=formataddr((shop.name, from_address)),
        to=[profile.email],
    )
    message.attach_alternative(render_to_string(EMAIL_HTML_TEMPLATE, context), "text/html")
    try:
        message.send()
    except OSError:  # smtplib's errors are OSErrors too
        # The page already said "if an account exists we've sent a link"; a failing mail server must
        # not turn that into an error page that would reveal the account exists.
        logger.exception("Could not send the password reset mail to profile %s", profile.pk)


def password_reset_profile(*, environment: Environment, uidb64: str, token: str) -> CustomerProfile | None:
    """The profile a reset link is for, or None when the link is malformed, used, stale or foreign."""
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    profile = CustomerProfile.objects.filter(environment=environment, pk=pk).first()
    if profile is None or not password_reset_tokens.check_token(profile, token):  # type: ignore[arg-type]
        return None
    return profile


# --- self-service ------------------------------------------------------------------------------------------


def _check_new_password(
    profile: CustomerProfile, password: str, confirmation: str, *, pointer: str, errors: ErrorCollector
) -> None:
    if password != confirmation:
        errors.add("The two passwords do not match.", pointer=f"{pointer}2")
        return
    try:
        validate_password(password, user=profile)  # type: ignore[arg-type]
    except ValidationError as exc:
        for message in exc.messages:
            errors.add(message, pointer=f"{pointer}1")


def _store_password(profile: CustomerProfile, password: str, *, login: bool) -> CustomerProfile:
    profile = lock(CustomerProfile.objects.filter(pk=profile.pk)).get()
    profile.set_password(password)
    fields = ["password"]
    if login:
        profile.last_login = clock.now()
        fields.append("last_login")
    profile.save(update_fields=fields)
    return profile


@transaction.atomic
def account_set_password(
    *, profile: CustomerProfile, password: str, confirmation: str, login: bool = False
) -> CustomerProfile:
    """Set a new password (Django's validators), which ends every other panel session.

    ``login`` also records a sign-in, for the reset link that signs the customer in once used.
    Errors point at the form fields ``new_password1``/``new_password2``.
    """
    errors = ErrorCollector()
    _check_new_password(profile, password, confirmation, pointer="new_password", errors=errors)
    errors.raise_if_any("The new password cannot be used")
    return _store_password(profile, password, login=login)


@transaction.atomic
def account_change_password(
    *, profile: CustomerProfile, current_password: str, password: str, confirmation: str
) -> CustomerProfile:
    """A signed-in customer changes their password, proving it is them with the current one."""
    errors = ErrorCollector()
    if not profile.check_password(current_password):
        errors.add("Your current password is not correct.", pointer="current_password")
    _check_new_password(profile, password, confirmation, pointer="new_password", errors=errors)
    errors.raise_if_any("The password was not changed")
    return _store_password(profile, password, login=False)


@transaction.atomic
def account_update(
    *, profile: CustomerProfile, name: str, phone: str, accepts_marketing: bool, shop_name: str = ""
) -> CustomerProfile:
    """The customer edits their own name, phone (stored in E.164) and marketing consent.

    Only these columns are written, so a concurrent API update of other attributes is never undone.
    Errors point at the form field (``name``, ``phone``).
    """
    errors = ErrorCollector()
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        errors.add(f"Use at most {MAX_NAME_LENGTH} characters.", pointer="name")
    phone = phone.strip()
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError:
            errors.add(
                "This is not a valid phone number. Include the country code, e.g. +1 415 555 0123.",
                pointer="phone",
            )
    errors.raise_if_any("Your details were not saved")
    profile = lock(CustomerProfile.objects.filter(pk=profile.pk)).get()
    consent_before = profile.accepts_marketing
    profile.name = name
    profile.phone = phone
    profile.accepts_marketing = accepts_marketing
    activity_touch(profile)
    profile.save(update_fields=["name", "phone", "accepts_marketing", "last_activity"])
    consent_record(
        profile_id=profile.pk, old=consent_before, new=accepts_marketing, actor=ConsentActor.panel(shop_name)
    )
    return profile
