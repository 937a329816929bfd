"""Unsubscribing from marketing mail: the signed link, the RFC 8058 headers and the standard footer.

Every marketing message carries ``List-Unsubscribe: <https://.../unsubscribe/TOKEN/>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (what the large mailbox providers require of bulk
senders), and the same link in its body: ``{{ unsubscribe_url }}`` where the template puts it, else a
standard footer appended to the HTML and text bodies.

The token is ``<customer>.<environment>[.<mailing>]:<signature>``, the signature a 128-bit keyed BLAKE2b
(a MAC) under a key derived from the server's ``SECRET_KEY`` and a salt of its own: it cannot be guessed,
and changing it (another customer's id) breaks the signature. Keys in ``SECRET_KEY_FALLBACKS`` are still
accepted, so rotating the secret does not break links in messages already sent. It does not expire: a link
in an old message must still work. The same customer and mailing always get the same token, so preparing and
sending a message render the same text. It is not ``django.core.signing`` (or ``hmac``) because a mailing
signs one per recipient, from several threads: HMAC-SHA256 goes through OpenSSL, whose per-call lookups
contend between threads (38 µs a link in a send against 6 µs alone), while BLAKE2b is CPython's own code.

The absolute address comes from ``PATRONAGE_PUBLIC_URL`` (the address customers reach this server at).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from html import escape
from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, reverse
from django.utils.encoding import force_bytes

SALT = "patronage.mailings.unsubscribe"
SALT_BYTES = hashlib.sha256(SALT.encode()).digest()[:16]  # blake2b takes a salt of up to 16 bytes
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


@functools.lru_cache(maxsize=8)
def _key(secret: str | bytes) -> bytes:
    return hashlib.blake2b(
        force_bytes(secret), digest_size=32, person=b"unsubscribe-v1", salt=SALT_BYTES
    ).digest()


def _signature(payload: str, secret: str | bytes) -> str:
    return _sign(payload, _key(secret))


def _sign(payload: str, key: bytes) -> str:
    mac = hashlib.blake2b(payload.encode(), digest_size=16, key=key).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_for(*, profile_id: int, environment_id: int, mailing_id: int | None = None) -> str:
    ids = (profile_id, environment_id) if mailing_id is None else (profile_id, environment_id, mailing_id)
    payload = ".".join(map(str, ids))
    return f"{payload}:{_signature(payload, settings.SECRET_KEY)}"


def token_read(token: str) -> Unsubscribe | None:
    """What the token names, or None when it was not made here or was changed."""
    payload, _, signature = token.partition(":")
    parts = payload.split(".")
    if (
        not signature
        or len(parts) not in (2, 3)
        or not all(part.isascii() and part.isdigit() for part in parts)
    ):
        return None
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    if not any(hmac.compare_digest(signature, _signature(payload, secret)) for secret in secrets):
        return None
    ids = [int(part) for part in parts]
    return Unsubscribe(ids[0], ids[1], ids[2] if len(ids) == 3 else None)


@functools.lru_cache(maxsize=16)
def _link_around(public_url: str, script_prefix: str) -> tuple[str, str]:
    """The link's text before and after the token (reversing the route once, not per recipient)."""
    slot = "0.0:slot"
    head, tail = reverse("unsubscribe", args=[slot]).split(slot)
    return public_url.rstrip("/") + head, tail


def url_for(*, profile_id: int, environment_id: int, mailing_id: int | None = None) -> str:
    head, tail = _link_around(settings.PATRONAGE_PUBLIC_URL, get_script_prefix())
    return (
        head + token_for(profile_id=profile_id, environment_id=environment_id, mailing_id=mailing_id) + tail
    )


def mailing_links(mailing: Any) -> Callable[[int], str]:
    """A function giving the link of ``mailing``'s message to a customer id: everything but the customer's
    part is worked out once (a send makes one link per recipient, from several threads)."""
    head, tail = _link_around(settings.PATRONAGE_PUBLIC_URL, get_script_prefix())
    key = _key(settings.SECRET_KEY)
    ids = f".{mailing.environment_id}.{mailing.pk}"

    def link(profile_id: int) -> str:
        payload = f"{profile_id}{ids}"
        return f"{head}{payload}:{_sign(payload, key)}{tail}"

    return link


def mailing_url(mailing: Any, profile_id: int) -> str:
    """The link of ``mailing``'s message to the customer ``profile_id``."""
    return mailing_links(mailing)(profile_id)


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
