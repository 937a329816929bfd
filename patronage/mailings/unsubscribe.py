"""Unsubscribing from marketing mail: the signed link, the RFC 8058 headers and the standard footer.

Every marketing message carries ``List-Unsubscribe: <https://.../unsubscribe/TOKEN/>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (what the large mailbox providers require of bulk
senders), and the same link in its body: ``{{ unsubscribe_url }}`` where the template puts it, else a
standard footer appended to the HTML and text bodies.

The token is signed with the server's ``SECRET_KEY`` (``django.core.signing``, a salt of its own) and names
the customer, their environment and the mailing: it cannot be guessed, and changing it (another customer's
id) breaks the signature. It does not expire: a link in an old message must still work. The same customer
and mailing always get the same token, so preparing and sending a message render the same text.

The absolute address comes from ``PATRONAGE_PUBLIC_URL`` (the address customers reach this server at).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from html import escape
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "patronage.mailings.unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"
PREVIEW_TOKEN = "preview"

FOOTER_TEXT = "You receive this email because you agreed to hear from us. To stop, unsubscribe: {url}"
FOOTER_HTML = (
    '<p style="margin:24px 0 0;font-size:12px;line-height:1.5;color:#6b7280">'
    "You receive this email because you agreed to hear from us. "
    '<a href="{url}" style="color:#6b7280">Unsubscribe</a></p>'
)


@dataclass(frozen=True)
class Unsubscribe:
    """What a valid token says."""

    profile_id: int
    environment_id: int
    mailing_id: int | None


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def token_for(*, profile_id: int, environment_id: int, mailing_id: int | None = None) -> str:
    payload: dict[str, int] = {"p": profile_id, "e": environment_id}
    if mailing_id is not None:
        payload["m"] = mailing_id
    return _signer().sign_object(payload)


def token_read(token: str) -> Unsubscribe | None:
    """What the token names, or None when it was not made here or was changed."""
    try:
        payload: Any = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeError):
        return None
    if not isinstance(payload, dict):
        return None
    profile_id, environment_id, mailing_id = payload.get("p"), payload.get("e"), payload.get("m")
    if not isinstance(profile_id, int) or not isinstance(environment_id, int):
        return None
    return Unsubscribe(profile_id, environment_id, mailing_id if isinstance(mailing_id, int) else None)


def url_for(*, profile_id: int, environment_id: int, mailing_id: int | None = None) -> str:
    token = token_for(profile_id=profile_id, environment_id=environment_id, mailing_id=mailing_id)
    return settings.PATRONAGE_PUBLIC_URL.rstrip("/") + reverse("unsubscribe", args=[token])


def mailing_url(mailing: Any, profile_id: int) -> str:
    """The link of ``mailing``'s message to the customer ``profile_id``."""
    return url_for(profile_id=profile_id, environment_id=mailing.environment_id, mailing_id=mailing.pk)


def preview_url() -> str:
    """A stand-in for previews: staff opening a preview's link must not unsubscribe the customer."""
    return settings.PATRONAGE_PUBLIC_URL.rstrip("/") + reverse("unsubscribe", args=[PREVIEW_TOKEN])


def headers(url: str) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers of a marketing message."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def with_footer(html: str, text: str, url: str) -> tuple[str, str]:
    """The bodies with the standard footer appended to each (non-empty) one that lacks the link, e.g.
    because the template does not use ``{{ unsubscribe_url }}`` or a condition skipped it."""
    if text and url not in text:
        text = f"{text.rstrip()}\n\n-- \n{FOOTER_TEXT.format(url=url)}\n"
    if html and url not in html and escape(url) not in html:
        footer = FOOTER_HTML.format(url=escape(url))
        end = html.lower().rfind("</body>")
        html = html[:end] + footer + html[end:] if end >= 0 else html + footer
    return html, text


def sender_name(sender: str) -> str:
    """The display name of ``"Demo Shop <news@shop.example>"``, else the address."""
    name, address = parseaddr(sender)
    return name or address
