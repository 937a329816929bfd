"""Mailing templates: what a customer sees in a rendered message, what staff are told about a mistake (and
where it is), and that the sandbox gives a template nothing but the customer's allow-listed fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from patronage.mailings.templating import (
    CLIENT_FIELDS,
    Client,
    RenderFailed,
    TemplateProblem,
    analyse,
    check,
    renderer,
)

GROUPS = ["Summer sale", "Spring"]


def ada(**overrides: Any) -> Client:
    fields: dict[str, Any] = {
        "integration_id": "cust-42",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+48601234567",
        "birth_date": dt.date(1815, 12, 10),
        "group": "Regulars",
        "tax_exempt": True,
        "orders": 7,
        "total_sales": Decimal("1234.50"),
        "created": dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC),
        "attributes": {"tier": "gold"},
        "codes": {"summer sale": "SUN-1"},
        "last_codes": {"spring": "SPRING-OLD"},
    }
    fields.update(overrides)
    return Client(**fields)


def text(source: str, client: Client | None = None) -> str:
    return renderer({"text_body": source})(client or ada())["text_body"]


def problems(templates: dict[str, str]) -> list[TemplateProblem]:
    return check(templates, group_names=GROUPS).problems


def only_problem(templates: dict[str, str]) -> TemplateProblem:
    found = problems(templates)
    assert len(found) == 1, found
    return found[0]


# --- rendering -----------------------------------------------------------------------------------------
def test_every_allow_listed_field_renders_for_the_customer() -> None:
    # given
    source = (
        "{{ client.integration_id }}|{{ client.name }}|{{ client.email }}|{{ client.phone }}|"
        "{{ client.birth_date }}|{{ client.group }}|{{ client.tax_exempt }}|{{ client.orders }}|"
        "{{ client.total_sales }}|{{ client.created.year }}"
    )
    # when
    rendered = text(source)
    # then
    assert (
        rendered
        == "cust-42|Ada Lovelace|ada@example.com|+48601234567|1815-12-10|Regulars|True|7|1234.50|2024"
    )


@pytest.mark.parametrize(
    ("name", "first_name"),
    [("Ada Lovelace", "Ada"), ("Ada", "Ada"), ("", ""), ("  Ada  Lovelace", "Ada"), ("Ada\tLovelace", "Ada")],
)
def test_the_first_name_is_the_first_word_of_the_name(name: str, first_name: str) -> None:
    # when / then
    assert text("Dear {{ client.first_name }},", ada(name=name)) == f"Dear {first_name},"


def test_the_html_body_escapes_a_name_while_subject_and_text_keep_it_as_written() -> None:
    # given
    client = ada(name="<script>alert(1)</script> & Co")
    templates = {
        "subject": "Hi {{ client.name }}",
        "html_body": "<p>Hi {{ client.name }}</p>",
        "text_body": "Hi {{ client.name }}",
    }
    # when
    rendered = renderer(templates)(client)
    # then
    assert rendered["html_body"] == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</p>"
    assert rendered["subject"] == "Hi <script>alert(1)</script> & Co"
    assert rendered["text_body"] == "Hi <script>alert(1)</script> & Co"


def test_custom_attributes_are_readable_and_a_missing_one_renders_empty() -> None:
    # when
    rendered = text(
        "[{{ client.attributes.tier }}][{{ client.attributes['tier'] }}][{{ client.attributes.shoe }}]"
    )
    # then
    assert rendered == "[gold][gold][]"


def test_promocode_shows_one_code_however_often_it_is_called_in_any_part() -> None:
    # given
    client = ada()
    templates = {
        "subject": "{{ client.promocode('Summer sale') }}",
        "html_body": "<b>{{ client.promocode('Summer sale') }}</b> {{ client.promocode('Summer sale') }}",
        "text_body": "{{ client.promocode('Summer sale') }}",
    }
    # when
    rendered = renderer(templates)(client)
    # then
    assert rendered == {"subject": "SUN-1", "html_body": "<b>SUN-1</b> SUN-1", "text_body": "SUN-1"}
    assert client.used_initial == {"summer sale"}


def test_group_names_in_macros_match_ignoring_case_and_surrounding_spaces() -> None:
    # when
    rendered = text(
        "{{ client.promocode('SUMMER SALE') }} {{ client.promocode(' summer Sale ') }} "
        "{{ client.last_promocode('sPrInG') }}"
    )
    # then
    assert rendered == "SUN-1 SUN-1 SPRING-OLD"
    assert problems({"text_body": "{{ client.promocode('summer SALE') }}"}) == []


def test_last_promocode_repeats_the_latest_code_or_shows_nothing_when_none_was_issued() -> None:
    # given
    client = ada(codes={}, last_codes={"spring": "SPRING-OLD"})
    # when
    rendered = text(
        "[{{ client.last_promocode('Spring') }}][{{ client.last_promocode('Summer sale') }}]", client
    )
    # then
    assert rendered == "[SPRING-OLD][]"
    assert client.used_repeat == {"spring"}
    assert client.used_initial == set()


def test_last_promocode_shows_the_new_code_when_the_same_message_issues_one_from_the_group() -> None:
    # given
    client = ada(codes={"spring": "SPRING-NEW"}, last_codes={"spring": "SPRING-OLD"})
    # when
    rendered = text("was {{ client.last_promocode('Spring') }}, now {{ client.promocode('Spring') }}", client)
    # then
    assert rendered == "was SPRING-NEW, now SPRING-NEW"
    assert client.used_initial == {"spring"}
    assert client.used_repeat == set()


def test_only_macros_that_actually_ran_are_recorded() -> None:
    # given
    client = ada(codes={"summer sale": "SUN-1", "spring": "SPRING-NEW"}, last_codes={"spring": "SPRING-OLD"})
    source = (
        "{% if client.orders > 100 %}{{ client.promocode('Summer sale') }}{% endif %}"
        "{% if false %}{{ client.last_promocode('Spring') }}{% endif %}"
        "{% for _ in [] %}{{ client.promocode('Spring') }}{% endfor %}done"
    )
    # when
    rendered = text(source, client)
    # then
    assert rendered == "done"
    assert client.used_initial == set()
    assert client.used_repeat == set()


def test_a_taken_branch_records_its_group() -> None:
    # given
    client = ada()
    # when
    text("{% if client.orders > 5 %}{{ client.promocode('Summer sale') }}{% endif %}", client)
    # then
    assert client.used_initial == {"summer sale"}


# --- mistakes reported where they are -----------------------------------------------------------------
def test_a_syntax_error_is_reported_with_its_line() -> None:
    # when
    problem = only_problem({"text_body": "Hello\n{{ client.name }}\n{% if client.orders > %}x{% endif %}"})
    # then
    assert (problem.part, problem.line, problem.column) == ("text_body", 3, None)
    assert str(problem) == "Text body, line 3: syntax error: unexpected 'end of statement block'"


def test_an_unclosed_block_is_a_syntax_error_naming_the_missing_end() -> None:
    # when
    problem = only_problem({"html_body": "<p>\n{% if client.orders %}\nno end"})
    # then
    assert problem.part == "html_body"
    assert problem.message.startswith("syntax error: Unexpected end of template")
    assert "'endif'" in problem.message


def test_an_unknown_filter_is_reported_as_a_syntax_error_not_a_crash() -> None:
    # when
    problem = only_problem({"subject": "Hi\n{{ client.name|uper }}"})
    # then
    assert str(problem) == "Subject, line 2: syntax error: No filter named 'uper'."
    with pytest.raises(RenderFailed) as failed:
        renderer({"subject": "Hi\n{{ client.name|uper }}"})(ada())
    assert failed.value.problem == problem


def test_chance_has_no_place_in_a_message_that_is_rendered_twice() -> None:
    # when: a template picks at random (preparation and sending would disagree on which code it shows)
    problem = only_problem(
        {"text_body": "{% if [true, false]|random %}{{ client.promocode('Spring') }}{% endif %}"}
    )
    # then
    assert str(problem) == "Text body, line 1: No filter named 'random' found."


@pytest.mark.parametrize(
    ("source", "line", "column", "name"),
    [
        ("{{ settings.SECRET_KEY }}", 1, 4, "settings"),
        ("Hi\n\n  {{ request }}", 3, 6, "request"),
        ("Your request: {{ request.user }}", 1, 18, "request"),
        ("{{ client.name }} {{ name }}", 1, 22, "name"),
        ("{{ self }}", 1, 4, "self"),
        ("{{ config }}", 1, 4, "config"),
        ("{{ cycler() }}", 1, 4, "cycler"),
    ],
)
def test_an_unknown_variable_is_reported_where_it_is_written(
    source: str, line: int, column: int, name: str
) -> None:
    # when
    problem = only_problem({"text_body": source})
    # then
    assert (problem.part, problem.line, problem.column) == ("text_body", line, column)
    assert problem.message == f"unknown variable {name!r}; templates see only 'client' and 'unsubscribe_url'"


@pytest.mark.parametrize(
    ("source", "column", "field"),
    [
        ("Hi {{ client.password }}", 13, "password"),
        ("Hi {{ client['password'] }}", 15, "password"),
        ("Hi {{ client.last_login }}", 13, "last_login"),
        ("Hi {{ client|attr('password') }}", 20, "password"),
        ("Hi {{ client.frist_name }}", 13, "frist_name"),
    ],
)
def test_an_unknown_client_field_is_reported_with_the_fields_there_are(
    source: str, column: int, field: str
) -> None:
    # when
    problem = only_problem({"html_body": "<p>\n" + source})
    # then
    assert (problem.part, problem.line, problem.column) == ("html_body", 2, column)
    assert problem.message == f"unknown field client.{field}; a client has {', '.join(CLIENT_FIELDS)}"


def test_an_unknown_group_is_reported_at_its_own_call() -> None:
    # given
    source = "{{ client.last_promocode('Spring') }} and {{ client.promocode('Winter') }}"
    # when
    problem = only_problem({"text_body": "Codes:\n" + source})
    # then
    assert source.index("promocode('Winter')") + 1 == 53
    assert str(problem) == "Text body, line 2, column 53: there is no group of promo codes named 'Winter'"


def test_an_unknown_group_is_found_on_the_right_call_of_a_line_with_two() -> None:
    # when
    problem = only_problem({"text_body": "{{ client.promocode('Spring') }} {{ client.promocode('Autumn') }}"})
    # then
    assert (problem.line, problem.column) == (1, 44)  # the second call's "promocode"
    assert problem.message == "there is no group of promo codes named 'Autumn'"


@pytest.mark.parametrize(
    "source",
    [
        "{% set g = 'Spring' %}{{ client.promocode(g) }}",
        "{{ client.promocode(client.group) }}",
        "{{ client.promocode('Spring', 'Summer sale') }}",
        "{{ client.promocode() }}",
        "{{ client.promocode(group='Spring') }}",
        "{{ client.promocode(*['Spring']) }}",
        "{{ client.promocode(1) }}",
    ],
)
def test_a_macro_must_be_given_one_group_name_in_quotes(source: str) -> None:
    # when
    problem = only_problem({"text_body": "x\n" + source})
    # then
    assert (problem.line, problem.message) == (
        2,
        "client.promocode takes one group name in single quotes, e.g. 'Summer sale'",
    )
    assert problem.column == source.index("promocode") + 1


@pytest.mark.parametrize(
    "source",
    [
        "{{ client.promocode }}",
        "{% set code = client.promocode %}{{ code('Spring') }}",
        "{{ client|attr('promocode') }}",
    ],
)
def test_a_macro_that_is_not_called_directly_is_reported(source: str) -> None:
    # when
    problem = only_problem({"text_body": source})
    # then
    assert problem.message == (
        "client.promocode must be called with a group name in single quotes, "
        "e.g. client.promocode('Summer sale')"
    )


def test_a_macro_whose_name_is_built_at_render_time_fails_the_check() -> None:
    # given
    source = "{% set macro = 'promo' ~ client.group[:0] ~ 'code' %}{{ (client|attr(macro))('Spring') }}"
    # when
    problem = only_problem({"text_body": source})
    # then
    assert problem.line == 1
    assert "'spring' is not named in quotes" in problem.message


@pytest.mark.parametrize(
    ("source", "attribute", "column"),
    [
        ("{{ client.__class__ }}", "__class__", 11),
        ("{{ client.promocode.__globals__ }}", "__globals__", 21),
        ("{{ client.name|attr('__class__') }}", "__class__", 22),
        ("{{ client.attributes['_secret'] }}", "_secret", 23),
    ],
)
def test_a_private_attribute_is_reported(source: str, attribute: str, column: int) -> None:
    # when
    found = problems({"text_body": source})
    # then
    message = f"access to the private attribute {attribute!r} is not allowed"
    assert TemplateProblem("text_body", 1, column, message) in found


def test_each_problem_names_its_part_and_reads_as_a_sentence() -> None:
    # given
    templates = {
        "subject": "Hello {{ client.first_name }}",
        "html_body": "<p>\nHi\n  <b>{{ client.nickname }}</b>\n</p>",
        "text_body": "Hi\n{{ request }}",
    }
    # when
    found = problems(templates)
    # then
    assert [str(problem) for problem in found] == [
        "HTML body, line 3, column 15: unknown field client.nickname; "
        f"a client has {', '.join(CLIENT_FIELDS)}",
        "Text body, line 2, column 4: unknown variable 'request'; "
        "templates see only 'client' and 'unsubscribe_url'",
    ]


def test_line_and_column_follow_jinjas_line_breaks_not_unicode_line_separators() -> None:
    # given
    source = "Pasted\u2028text\r\nsecond\rthird {{ nope }}"
    # when
    problem = only_problem({"text_body": source})
    # then
    assert (problem.line, problem.column) == (3, 10)


def test_a_problem_found_by_the_trial_render_has_its_line_and_part() -> None:
    # given
    templates = {"subject": "ok", "text_body": "one\ntwo\n{{ client.orders / 0 }}"}
    # when
    problem = only_problem(templates)
    # then
    assert str(problem) == "Text body, line 3: division by zero"
    with pytest.raises(RenderFailed) as failed:
        renderer(templates)(ada())
    assert failed.value.problem == problem


def test_a_clean_mailing_has_no_problems_and_lists_its_groups() -> None:
    # given
    templates = {
        "subject": "{{ client.first_name }}, your code",
        "html_body": "{% if client.tax_exempt %}<b>{{ client.promocode('Summer sale') }}</b>{% endif %}",
        "text_body": "{{ client.promocode('summer sale') }} {{ client.last_promocode('Spring') }}",
    }
    # when
    analysis = check(templates, group_names=GROUPS)
    # then
    assert analysis.problems == []
    assert analysis.groups("promocode") == ["summer sale"]
    assert analysis.groups("last_promocode") == ["spring"]


# --- the sandbox --------------------------------------------------------------------------------------
ESCAPES_THE_RENDER_CATCHES = [
    "{{ client|attr('__class__') }}",
    "{{ client|attr('__init__') }}",
    "{{ client.promocode|attr('__globals__') }}",
    "{{ client.promocode|attr('__self__') }}",
    "{{ (client.name|attr('format'))('{0.__class__}') ~ ('{0.__class__}'|attr('format'))(client) }}",
    "{{ ('{0.__init__.__globals__}'|attr('format'))(client.promocode) }}",
    "{{ '{0.__class__}'.format(client) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(client) }}",
    "{{ '{0.codes}'.format(client) }}",
    "{{ '{c.__class__}'.format_map({'c': client}) }}",
    "{{ '{c.last_codes}'.format_map({'c': client}) }}",
    "{{ client.attributes.update({'tier': 'platinum'}) }}",
    "{{ client.attributes.pop('tier') }}",
    "{{ client.attributes.setdefault('tier', 'x') }}",
    "{{ ['a'].append('b') }}",
    "{{ dict(a=1).clear() }}",
    "{{ range(10**9)|list|length }}",
    "{{ dict.mro() }}",
    "{{ client|attr('codes') }}",
    "{{ client|attr('last_codes') }}",
    "{{ client|attr('used_initial') }}",
    "{{ [client]|map(attribute='codes')|list }}",
    "{{ [client]|map(attribute='__class__')|list }}",
    "{% for c in [client] %}{{ c.last_codes }}{% endfor %}",
    "{% set c = client %}{{ c.used_repeat }}",
    "{% for x in [1] %}{{ loop|attr('__class__') }}{% endfor %}",
]


@pytest.mark.parametrize("source", ESCAPES_THE_RENDER_CATCHES)
def test_a_sandbox_escape_fails_the_check_and_the_render(source: str) -> None:
    # when
    found = problems({"html_body": "<p>\n" + source})
    # then
    assert found, "the check let it through"
    assert found[0].line == 2
    with pytest.raises(RenderFailed) as failed:
        renderer({"html_body": "<p>\n" + source})(ada())
    assert failed.value.problem.part == "html_body"
    assert failed.value.problem.line == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ client.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{{ lipsum() }}",
        "{{ namespace(a=1) }}",
        "{{ config.SECRET_KEY }}",
        "{{ self }}",
        "{{ self.__init__.__globals__ }}",
        "{{ client.codes }}",
        "{{ client.last_codes }}",
        "{{ client.used_initial }}",
        "{{ client['used_repeat'] }}",
        "{% for x in [1] %}{{ loop.__class__ }}{% endfor %}",
        "{{ client.attributes.__class__.__base__.__subclasses__() }}",
        "{{ ''.__class__.__mro__ }}",
    ],
)
def test_a_sandbox_escape_the_static_check_sees_is_reported_before_rendering(source: str) -> None:
    # when / then
    assert problems({"text_body": source}), "the check let it through"


def test_range_is_capped_by_the_sandbox() -> None:
    # when
    problem = only_problem({"text_body": "{% for i in range(10**9) %}x{% endfor %}"})
    # then
    assert problem.line == 1
    assert "Range too big" in problem.message


def test_format_filter_shows_no_more_than_the_clients_own_name_for_itself() -> None:
    # when
    rendered = text("[{{ '%s'|format(client) }}][{{ '%r'|format(client) }}][{{ client }}]")
    # then
    assert rendered == "[client cust-42][client cust-42][client cust-42]"


def test_attempted_mutation_leaves_the_customer_untouched() -> None:
    # given
    client = ada()
    # when
    with pytest.raises(RenderFailed):
        text("{{ client.attributes.update({'tier': 'platinum'}) }}", client)
    # then
    assert client.attributes == {"tier": "gold"}


PROBES = [
    "{{ '%s'|format(client) }}",
    "{{ client.attributes }}",
    "{{ client.attributes|dictsort }}",
    "{{ client.promocode('Summer sale') }}",
    "{{ client.created.tzinfo }}",
    "{{ self }}",
    "{{ config }}",
    "{{ settings }}",
    "{{ request }}",
    "{{ client|attr('password') }}",
    "{% set c = client %}{{ c.password }}",
    "{{ '{0.__class__}'.format(client) }}",
    "{{ '{0.promocode.__globals__}'.format(client) }}",
    "{{ client.promocode|attr('__globals__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ (client.name|attr('format'))('{0.__class__.__init__.__globals__[settings]}') }}",
    "{{ client.total_sales|attr('__class__') }}",
]


@pytest.mark.parametrize("source", PROBES)
def test_no_template_reaches_the_settings(source: str) -> None:
    # given
    secret = settings.SECRET_KEY
    assert secret
    for part in ("subject", "html_body", "text_body"):
        # when
        try:
            shown = renderer({part: source})(ada())[part]
        except RenderFailed as exc:
            shown = str(exc)
        reported = " ".join(str(problem) for problem in problems({part: source}))
        # then: neither the message nor what staff are told carries the key
        assert secret not in shown
        assert secret not in reported


# --- any customer -------------------------------------------------------------------------------------
anything = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)


@given(name=anything, email=anything)
def test_any_name_and_email_render_and_stay_escaped_in_html(name: str, email: str) -> None:
    # given
    client = Client(name=name, email=email, codes={"summer sale": "SUN-1"})
    templates = {
        "subject": "{{ client.first_name }}",
        "html_body": (
            "<p>{{ client.name }} {{ client.first_name }} {{ client.email }} "
            "{{ client.promocode('Summer sale') }}</p>"
        ),
        "text_body": "{{ client.name }}|{{ client.email }}",
    }
    # when
    rendered = renderer(templates)(client)
    # then
    first_name = name.split()[0] if name.split() else ""
    assert rendered["html_body"] == f"<p>{escape(name)} {escape(first_name)} {escape(email)} SUN-1</p>"
    assert rendered["html_body"].count("<") == 2
    assert rendered["text_body"] == f"{name}|{email}"
    assert rendered["subject"] == first_name


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ 10 ** (10 ** 10) }}",
        "{{ 2 ** 1000 }}",
        "{{ ['a'] * 2000000 }}",
        "{{ 'ab' * 600000 }}",
        "{% for i in range(20) %}{{ 'x' * 90000 }}{% endfor %}",
    ],
)
def test_a_template_cannot_make_a_huge_message_or_hang_the_worker(source: str) -> None:
    # when: the template is checked, as on save
    problems = check({"text_body": source}, group_names=[]).problems
    # then: it is refused, promptly, with a template error instead of eating memory or CPU
    assert len(problems) == 1
    assert "not allowed" in problems[0].message or "longer than" in problems[0].message


def test_a_birthday_template_passes_the_check() -> None:
    templates = {"text_body": "Happy birthday on {{ client.birth_date.strftime('%d.%m') }}!"}
    assert check(templates, group_names=[]).problems == []


@pytest.mark.parametrize(
    ("templates", "fields"),
    [
        (
            {
                "subject": "{{ client.first_name }}",
                "text_body": "{{ client.orders }} {{ client.promocode('Spring') }}",
            },
            ("name", "orders"),
        ),
        (
            {"html_body": "{{ client['email'] }} {{ client|attr('phone') }} {{ client.attributes.tier }}"},
            ("email", "phone", "attributes"),
        ),
        ({"text_body": "{{ client.promocode('Spring') }}"}, ()),
        ({"text_body": "{{ client }}"}, CLIENT_FIELDS),
        ({"text_body": "{% set c = client %}{{ c.name }}"}, CLIENT_FIELDS),
        ({"text_body": "{% for f in ['name'] %}{{ client|attr(f) }}{% endfor %}"}, CLIENT_FIELDS),
    ],
)
def test_a_send_keeps_only_the_customer_fields_its_templates_read(
    templates: dict[str, str], fields: tuple[str, ...]
) -> None:
    assert analyse(templates).client_fields() == fields
