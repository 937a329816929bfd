"""A mailing template's CPU and memory budget: refused while it renders, in the save check, the preview and
the send alike (they all render through ``templating.render``)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from patronage.mailings import sending
from patronage.mailings.models import Mailing, MailingDelivery
from patronage.mailings.services import mailing_preview, mailing_start
from patronage.mailings.templating import Client, RenderFailed, check, renderer
from patronage.testing.mailings import make_customers, make_mailing
from patronage.testing.smtp import SmtpServer
from patronage.workspace.models import Environment

# Peak memory a refused render may take on top of what it had (a megabyte of output is the budget).
PEAK_BYTES = 16 * 1024 * 1024


def customer(**fields: Any) -> Client:
    return Client(integration_id="cust-1", name="Ada Lovelace", email="ada@example.com", **fields)


def refused(source: str, client: Client | None = None) -> tuple[str, int]:
    """The render's refusal and the peak memory it took to get there."""
    tracemalloc.start()
    try:
        with pytest.raises(RenderFailed) as failed:
            renderer({"text_body": source})(client or customer())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return failed.value.problem.message, peak


@pytest.fixture
def small_budget(settings: Any) -> Iterator[None]:
    settings.PATRONAGE_MAILING_MAX_OPERATIONS = 10_000
    yield


@pytest.mark.parametrize(
    "source",
    [
        # a loop printing a gigabyte
        "{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100) %}" + "y" * 100 + "{% endfor %}{% endfor %}",
        # ... into a captured block, a macro's buffer, a filter block: never printed until the end
        "{% set s %}{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}{% endset %}{{ s|length }}",
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}{% endmacro %}"
        "{{ m()|length }}",
        "{% filter length %}{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}{% endfilter %}",
        "{% macro m() %}" + "z" * 10000 + "{% endmacro %}"
        "{% set s %}{% for i in range(100000) %}{{ m() }}{% endfor %}{% endset %}{{ s|length }}",
        # one call making a huge value out of small arguments
        "{{ range(100000)|join('x' * 100000) }}",
        "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'.ljust(1000000000) }}",
        "{{ 'x'.zfill(1000000000) }}",
        "{{ ('a' * 100000).join(range(100000)|map('string')) }}",
        "{{ '%*d' % (1000000000, 1) }}",
        "{{ '%1000000000d' % 1 }}",
        "{{ '%1000000000d'|format(1) }}",
        "{{ '{:>1000000000}'.format(1) }}",
        "{{ '{:>{}}'.format(1, 1000000000) }}",
        "{{ ('x' * 999999) + ('x' * 999999) }}",
        "{{ (range(1)|list)|batch(1000000000, 'x')|list }}",
        "{{ ('a\\n' * 400000)|indent(100) }}",
        "{{ (((10 ** 100) ** 100) ** 100) }}",
    ],
)
def test_a_template_making_a_huge_message_is_refused_early_with_little_memory(source: str) -> None:
    # when
    message, peak = refused(source)
    # then: refused with the reason, long before a gigabyte existed
    assert "not allowed" in message or "more than" in message or "longer than" in message, message
    assert peak < PEAK_BYTES, f"peak {peak:,} bytes"


def test_nested_loops_of_a_hundred_million_rounds_are_refused_at_save() -> None:
    # given
    source = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}done"
    # when: the check of a save
    problems = check({"text_body": source}, group_names=[]).problems
    # then
    assert len(problems) == 1
    assert "more than 1,000,000 operations" in problems[0].message
    assert problems[0].line == 1


def test_macros_calling_each_other_exponentially_are_refused() -> None:
    # given: each level calls the next twice (2^60 calls)
    macros = "".join(
        f"{{% macro m{n}() %}}{{{{ m{n + 1}() }}}}{{{{ m{n + 1}() }}}}{{% endmacro %}}" for n in range(60)
    )
    source = macros + "{% macro m60() %}.{% endmacro %}{{ m0()|length }}"
    # when
    with pytest.raises(RenderFailed) as failed:
        renderer({"text_body": source})(customer())
    # then
    assert "more than 1,000,000" in failed.value.problem.message


def test_a_loop_bounded_by_a_customer_field_passes_the_check_and_stops_at_that_customers_render() -> None:
    # given: the sample customer of the check has no orders
    source = "{% for i in range(client.orders * 10) %}{% for j in range(100000) %}{% endfor %}{% endfor %}ok"
    assert check({"text_body": source}, group_names=[]).problems == []
    assert renderer({"text_body": source})(customer(orders=0)) == {"text_body": "ok"}
    # when: a customer with 30 orders (3 million rounds)
    message, _ = refused(source, customer(orders=30))
    # then
    assert "more than 1,000,000 operations" in message


def test_the_budgets_are_settings(settings: Any) -> None:
    # given
    settings.PATRONAGE_MAILING_MAX_OUTPUT = 1000
    settings.PATRONAGE_MAILING_MAX_OPERATIONS = 100
    # when / then
    assert "longer than 1,000 characters" in refused("{{ 'x' * 600 }}{{ 'y' * 600 }}")[0]
    assert "more than 100 operations" in refused("{% for i in range(200) %}{% endfor %}")[0]
    assert renderer({"text_body": "{% for i in range(50) %}.{% endfor %}"})(customer()) == {
        "text_body": "." * 50
    }


def test_an_ordinary_template_fits_the_budget_easily() -> None:
    # given: a newsletter with a table of 500 rows, macros and a captured block
    source = (
        "{% macro row(n) %}<tr><td>{{ n }}</td><td>{{ client.name|upper }}</td></tr>{% endmacro %}"
        "{% set intro %}Hello {{ client.first_name }}, {{ '%05d'|format(client.orders) }}{% endset %}"
        "{{ intro }}<table>{% for n in range(500) %}{{ row(n) }}{% endfor %}</table>"
        "{{ ['a', 'b']|join(', ') }} {{ 'x'|center(9) }} {{ '{:>6}'.format(7) }}"
    )
    # when
    rendered = renderer({"html_body": source})(customer(orders=7))["html_body"]
    # then
    assert rendered.startswith("Hello Ada, 00007<table><tr><td>0</td><td>ADA LOVELACE</td></tr>")
    assert rendered.count("<tr>") == 500
    assert rendered.endswith("a, b     x          7")


def test_recursive_loops_are_refused() -> None:
    problems = check({"text_body": "{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}"}, group_names=[])
    assert "recursive loops are not allowed" in problems.problems[0].message


@pytest.mark.django_db
def test_the_preview_refuses_a_costly_template_for_that_customer() -> None:
    # given
    from patronage.core.errors import ValidationFailed

    (rich,) = make_customers(Environment.LIVE, 1, prefix="rich", closed_sessions=30)
    source = "{% for i in range(client.orders * 10) %}{% for j in range(100000) %}{% endfor %}{% endfor %}ok"
    mailing = make_mailing(Environment.LIVE, text_body=source)
    # when / then
    with pytest.raises(ValidationFailed, match="operations"):
        mailing_preview(mailing=mailing, profile=rich)


@pytest.mark.django_db(transaction=True)
def test_a_costly_template_for_one_recipient_fails_that_recipient_and_the_send_goes_on(
    smtp_server: SmtpServer,
) -> None:
    # given: two customers without orders, one with 30
    make_customers(Environment.LIVE, 2)
    make_customers(Environment.LIVE, 1, prefix="rich", closed_sessions=30)
    source = "{% for i in range(client.orders * 10) %}{% for j in range(100000) %}{% endfor %}{% endfor %}ok"
    mailing = make_mailing(Environment.LIVE, text_body=source)
    # when
    mailing_start(mailing=mailing, enqueue=False)
    outcome = sending.mailing_send_run(mailing_id=mailing.pk)
    # then
    assert outcome.finished
    deliveries = {d.email: d for d in MailingDelivery.objects.filter(mailing=mailing)}
    assert deliveries["c0@example.com"].status == MailingDelivery.Status.SENT
    assert deliveries["c1@example.com"].status == MailingDelivery.Status.SENT
    rich = deliveries["rich0@example.com"]
    assert rich.status == MailingDelivery.Status.SKIPPED
    assert "Template error for this customer" in rich.reason
    assert "more than 1,000,000 operations" in rich.reason
    assert sorted(m.to[0] for m in smtp_server.wait_for(2)) == ["c0@example.com", "c1@example.com"]
    assert Mailing.objects.get(pk=mailing.pk).status == Mailing.Status.SENT
