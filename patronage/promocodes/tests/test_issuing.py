"""Issuing codes (what a mailing does per batch) and taking them back, and deleting a group while codes of it
are being issued: the issue history never points at a code or a group that is gone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from patronage.core import clock
from patronage.promocodes.models import IssueKind, PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.promocodes.selectors import active_counts, mailing_codes
from patronage.promocodes.services import promo_code_group_delete, promo_codes_issue, promo_codes_unissue
from patronage.testing.mailings import make_customers
from patronage.testing.promocodes import make_group
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

MAILING = 7


def test_issuing_hands_out_the_next_codes_in_upload_order_and_records_each_issue(db: None) -> None:
    # given: three customers and a group of five codes
    live = environment_get(Environment.LIVE)
    ann, bob, cy = make_customers(live, 3)
    group = make_group(live, "Autumn", codes=["A1", "A2", "A3", "A4", "A5"])
    # when: a batch issues one code to each of them, then the second batch continues after the first
    first = promo_codes_issue(group=group, profile_ids=[ann.pk, bob.pk], mailing_id=MAILING, now=clock.now())
    after = max(code.code_id for code in first.values())
    second = promo_codes_issue(
        group=group, profile_ids=[cy.pk], mailing_id=MAILING, now=clock.now(), after_id=after
    )
    # then
    assert {p: c.code for p, c in {**first, **second}.items()} == {ann.pk: "A1", bob.pk: "A2", cy.pk: "A3"}
    assert dict(PromoCode.objects.filter(issued_to__isnull=False).values_list("code", "issued_to")) == {
        "A1": ann.pk,
        "A2": bob.pk,
        "A3": cy.pk,
    }
    assert mailing_codes(mailing_id=MAILING, profile_ids=[ann.pk, cy.pk]) == {
        ann.pk: [(IssueKind.INITIAL, "Autumn", "A1")],
        cy.pk: [(IssueKind.INITIAL, "Autumn", "A3")],
    }
    # when: bob's message does not show its code after all
    promo_codes_unissue(code_ids=[first[bob.pk].code_id], mailing_id=MAILING)
    # then: the code is active again and bob's history does not mention it
    assert active_counts([group.pk])[group.pk] == 3
    assert not PromoCodeIssue.objects.filter(profile=bob).exists()


def test_a_group_running_out_issues_to_as_many_as_it_can(db: None) -> None:
    live = environment_get(Environment.LIVE)
    customers = make_customers(live, 3)
    group = make_group(live, "Autumn", codes=["A1", "A2"])
    got = promo_codes_issue(
        group=group, profile_ids=[c.pk for c in customers], mailing_id=MAILING, now=clock.now()
    )
    assert sorted(code.code for code in got.values()) == ["A1", "A2"]
    assert customers[2].pk not in got
    assert PromoCodeIssue.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deleting_a_group_while_its_codes_are_being_issued_waits_and_leaves_no_dangling_history() -> None:
    # given: a batch issuing codes of a group, its transaction still open
    live = environment_get(Environment.LIVE)
    customers = make_customers(live, 3)
    group = make_group(live, "Autumn", codes=["A1", "A2", "A3", "A4"])
    issued, release = threading.Event(), threading.Event()
    deleted_at: list[float] = []
    committed_at: list[float] = []
    errors: list[BaseException] = []

    def issue() -> None:
        try:
            with transaction.atomic():
                promo_codes_issue(
                    group=group, profile_ids=[c.pk for c in customers], mailing_id=MAILING, now=clock.now()
                )
                issued.set()
                release.wait(timeout=10)
                time.sleep(0.3)  # the deletion must be waiting by now
                committed_at.append(time.monotonic())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def delete() -> None:
        try:
            issued.wait(timeout=10)
            release.set()
            promo_code_group_delete(group=PromoCodeGroup.objects.get(pk=group.pk))
            deleted_at.append(time.monotonic())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue), threading.Thread(target=delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then: the deletion waited for the issuing batch to commit, and unlinked what it issued
    assert not errors, errors
    assert deleted_at[0] > committed_at[0]
    assert not PromoCodeGroup.objects.filter(pk=group.pk).exists()
    assert not PromoCode.objects.filter(group_id=group.pk).exists()
    history: list[Any] = list(
        PromoCodeIssue.objects.values_list("code", "group_name", "group_id", "promo_code_id")
    )
    assert sorted(history) == [
        ("A1", "Autumn", None, None),
        ("A2", "Autumn", None, None),
        ("A3", "Autumn", None, None),
    ]
