"""A real SMTP server on loopback for tests that send email.

Django talks to it through its ordinary SMTP backend, so a test covers the same protocol, headers and MIME
structure production mail goes out with. Use the ``smtp_server`` fixture: it points Django's settings at
the server and starts each test with an empty mailbox::

    def test_reset_mail(smtp_server: SmtpServer) -> None:
        ...
        (mail,) = smtp_server.wait_for(1)
        assert "reset" in mail.text

Opt-in for tests of what goes wrong: ``smtp_server.refuse(address)`` makes the server answer ``RCPT TO``
for that address with a permanent error, as a real server does for an unknown mailbox; ``on_message`` is
called (in the server's thread) with each message as it arrives, before the server answers it.
"""

from __future__ import annotations

import asyncio
import atexit
import email
import email.policy
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it: envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def sender(self) -> str:
        return str(self.message["From"] or "")

    @property
    def to(self) -> list[str]:
        return [str(address.addr_spec) for address in self.message["To"].addresses]

    def _part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return "" if part is None else str(part.get_content())

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def links(self) -> list[str]:
        """Every http(s) URL in the plain-text part, in order."""
        return re.findall(r"https?://[^\s<>\"']+", self.text)


@dataclass
class SmtpServer:
    """The running server and the mail it has accepted since the test began."""

    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)
    # Lower-case address -> the reply its RCPT TO gets instead of "250 OK".
    refused: dict[str, str] = field(default_factory=dict)
    on_message: Callable[[ReceivedMail], None] | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def refuse(self, address: str, reply: str = "550 5.1.1 Mailbox unavailable") -> None:
        """Answer ``RCPT TO:<address>`` with ``reply`` (a permanent failure unless told otherwise)."""
        self.refused[address.lower()] = reply

    def _receive(self, mail: ReceivedMail) -> None:
        with self._arrived:
            self.messages.append(mail)
            self._arrived.notify_all()
        if self.on_message is not None:
            self.on_message(mail)

    def wait_for(self, count: int = 1, *, timeout: float = 5.0) -> list[ReceivedMail]:
        """The first ``count`` messages, waiting for senders in other threads (a worker, a live server)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} message(s), got {len(self.messages)} within {timeout} s"
                    )
                self._arrived.wait(remaining)
            return list(self.messages[:count])

    def to(self, address: str) -> list[ReceivedMail]:
        return [mail for mail in self.messages if address.lower() in (a.lower() for a in mail.rcpt_tos)]

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()


class _Handler:
    def __init__(self) -> None:
        self.server: SmtpServer | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.server.refused.get(address.lower()) if self.server is not None else None
        if refusal:
            return refusal
        # A handler that answers RCPT keeps the envelope itself (aiosmtpd's default does this).
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        if self.server is not None:
            self.server._receive(
                ReceivedMail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    message=message,
                )
            )
        return "250 Message accepted for delivery"


class _LoopbackController(Controller):
    """Binds port 0 so the OS picks a free port: no guessing, no clash between parallel runs."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


_handler = _Handler()
_controller: _LoopbackController | None = None
_controller_lock = threading.Lock()


def _running_controller() -> _LoopbackController:
    """One server per test process, started on first use (a few ms) and stopped at exit.

    A module-level singleton rather than a session fixture, so importing ``smtp_server`` alone is enough.
    """
    global _controller
    with _controller_lock:
        if _controller is None:
            controller = _LoopbackController(_handler, hostname=HOST, port=0)
            controller.start()
            atexit.register(controller.stop, no_assert=True)
            _controller = controller
        return _controller


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[SmtpServer]:
    """Django's mail goes to the loopback server for this test; ``messages`` holds what arrived."""
    controller = _running_controller()
    server = SmtpServer(host=HOST, port=controller.port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = HOST
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    _handler.server = server
    try:
        yield server
    finally:
        _handler.server = None
