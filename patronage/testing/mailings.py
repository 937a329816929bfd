"""Factories for mailings and the customers they go to."""

from __future__ import annotations

import re
from typing import Any

from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.mailings.models import Mailing
from patronage.mailings.services import MailingInput, mailing_save
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get


def _environment(environment: Environment | str) -> Environment:
    return environment if isinstance(environment, Environment) else environment_get(environment)


def make_customers(
    environment: Environment | str,
    count: int,
    *,
    prefix: str = "c",
    consent: bool = True,
    group: CustomerGroup | None = None,
    **fields: Any,
) -> list[CustomerProfile]:
    """``count`` customers ``<prefix>0@example.com``... named ``Customer <prefix>N``, in one INSERT."""
    env = _environment(environment)
    return CustomerProfile.objects.bulk_create(
        CustomerProfile(
            environment=env,
            integration_id=f"{prefix}{n}",
            name=f"Customer {prefix}{n}",
            email=f"{prefix}{n}@example.com",
            accepts_marketing=consent,
            group=group,
            **fields,
        )
        for n in range(count)
    )


def make_mailing(
    environment: Environment | str,
    *,
    name: str = "Autumn newsletter",
    sender: str = "Demo Shop <news@shop.example>",
    subject: str = "Hello {{ client.first_name }}",
    html_body: str = "<p>Dear {{ client.name }}</p>",
    text_body: str = "Dear {{ client.name }}",
    audience: str = Mailing.Audience.CONSENTING,
    customer_group: CustomerGroup | None = None,
    email_list: list[str] | None = None,
) -> Mailing:
    """A draft saved the way staff save one (templates checked)."""
    return mailing_save(
        environment=_environment(environment),
        data=MailingInput(
            name=name,
            sender=sender,
            subject=subject,
            html_body=html_body,
            text_body=text_body,
            audience=audience,
            customer_group=customer_group,
            email_list=("list.csv", email_list) if email_list is not None else None,
        ),
    )


_TEXT_FOOTER = re.compile(r"\r?\n\r?\n-- \r?\nYou receive this email because you agreed.*\Z", re.DOTALL)
_HTML_FOOTER = re.compile(r'<p style="[^"]*">You receive this email because you agreed.*?</p>', re.DOTALL)


def without_footer(body: str) -> str:
    """A received body without the standard unsubscribe footer (mailings.unsubscribe.with_footer), for tests
    of what the template made."""
    return _HTML_FOOTER.sub("", _TEXT_FOOTER.sub("", body))
