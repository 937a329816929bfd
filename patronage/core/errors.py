"""One error hierarchy for every user-facing failure.

Domain code raises these; it never mentions HTTP. The API layer maps ``code`` to a status and to
Talon.One's error body, the admin maps them to form errors or messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One problem, pointing at where it is (a JSON pointer, a CSV line, a form field)."""

    title: str
    details: str
    pointer: str | None = None
    line: int | None = None


class DomainError(Exception):
    code = "domain_error"
    title = "Request could not be processed"

    def __init__(self, message: str, *, details: list[ErrorDetail] | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or [ErrorDetail(title=self.title, details=message)]
        self.context = context


class ValidationFailed(DomainError):
    code = "validation_failed"
    title = "Invalid value"


class UnprocessableInput(ValidationFailed):
    """Well-formed input whose content cannot be used, e.g. a rule tree naming an unknown field."""

    code = "unprocessable_input"
    title = "Unprocessable value"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class InvalidStateTransition(DomainError):
    code = "invalid_state_transition"
    title = "Invalid state transition"


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    title = "Unauthorized"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    title = "A request with this idempotency key is in progress"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    title = "Request body too large"


@dataclass
class ErrorCollector:
    """Gathers every problem of one input before failing, so the user fixes them in one go."""

    problems: list[ErrorDetail] = field(default_factory=list)

    def add(
        self, details: str, *, pointer: str | None = None, line: int | None = None, title: str = ""
    ) -> None:
        self.problems.append(
            ErrorDetail(title=title or ValidationFailed.title, details=details, pointer=pointer, line=line)
        )

    def raise_if_any(self, message: str = "The request has invalid values") -> None:
        if self.problems:
            first = self.problems[0].details
            summary = (
                first
                if len(self.problems) == 1
                else f"{message}: {first} (and {len(self.problems) - 1} more)"
            )
            raise ValidationFailed(summary, details=list(self.problems))
