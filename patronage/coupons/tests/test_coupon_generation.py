"""Generating many coupons in the background: the worker makes them a chunk per commit, the job shows
how many are made, and the codes are distinct, of the pattern and new to the application."""

from __future__ import annotations

import pytest

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.core.errors import ValidationFailed
from patronage.coupons import generation
from patronage.coupons.generation import CodeDrawer, coupon_generation_run
from patronage.coupons.models import Coupon, CouponGeneration, GenerationStatus
from patronage.coupons.services import coupon_generation_start
from patronage.dataio.testing import run_queued_jobs
from patronage.workspace.models import Application, CodeCase


@pytest.fixture
def campaign(live_app: Application) -> Campaign:
    return running_campaign(live_app, "Big batch")


@pytest.mark.django_db(transaction=True)
def test_the_worker_makes_the_coupons_chunk_by_chunk(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: chunks of 100, and 300 coupons asked for with their settings
    monkeypatch.setattr(generation, "CHUNK", 100)
    job = coupon_generation_start(
        campaign=campaign,
        count=300,
        params={"pattern": "BIG-######", "usage_limit": 2, "attributes": {"wave": 1}},
    )
    assert (job.status, job.made) == (GenerationStatus.QUEUED, 0)
    # when: the worker runs
    run_queued_jobs()
    # then: the job is done with 300 made, all in its batch, distinct and of the pattern
    job.refresh_from_db()
    assert (job.status, job.made, job.error) == (GenerationStatus.DONE, 300, "")
    assert job.finished is not None
    values = list(Coupon.objects.filter(batch_id=job.batch_id).values_list("value", flat=True))
    assert len(values) == len(set(values)) == 300
    assert all(v.startswith("BIG-") and len(v) == 10 for v in values)
    assert {(c.usage_limit, c.attributes["wave"]) for c in Coupon.objects.all()} == {(2, 1)}


@pytest.mark.django_db
def test_progress_is_recorded_after_each_chunk(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generation, "CHUNK", 40)
    job = coupon_generation_start(campaign=campaign, count=100, params={"pattern": "P-######"})
    seen: list[tuple[int, int, int]] = []

    def progress(made: int, requested: int) -> None:
        seen.append((made, requested, CouponGeneration.objects.get(pk=job.pk).made))

    coupon_generation_run(generation_id=job.pk, progress=progress)
    assert seen == [(40, 100, 40), (80, 100, 80), (100, 100, 100)]


@pytest.mark.django_db
def test_a_pattern_that_runs_out_of_codes_fails_the_job_with_the_reason(campaign: Campaign) -> None:
    # given: a pattern with 1,000 codes of which 950 are already coupons
    Coupon.objects.bulk_create(
        Coupon(application=campaign.application, campaign=campaign, value=f"Z{n:03d}") for n in range(950)
    )
    job = coupon_generation_start(
        campaign=campaign, count=95, params={"pattern": "Z###", "alphabet": "0123456789"}
    )
    # when: it runs
    coupon_generation_run(generation_id=job.pk)
    job.refresh_from_db()
    # then: it made the 50 codes left, failed and says why
    assert (job.status, job.made) == (GenerationStatus.FAILED, 50)
    assert "too few unused codes" in job.error and "Only 50 of 95" in job.error
    assert Coupon.objects.count() == 1000


@pytest.mark.django_db
def test_start_checks_the_request_before_queueing(campaign: Campaign) -> None:
    with pytest.raises(ValidationFailed, match="1,000,000"):
        coupon_generation_start(campaign=campaign, count=1_000_001, params={"pattern": "#" * 12})
    with pytest.raises(ValidationFailed, match=r"needs? at least"):
        coupon_generation_start(campaign=campaign, count=50_000, params={"pattern": "AB-###"})
    with pytest.raises(ValidationFailed, match="not a date"):
        coupon_generation_start(
            campaign=campaign, count=10, params={"pattern": "#" * 8, "expiry_date": "tomorrow"}
        )
    assert not CouponGeneration.objects.exists()


def test_drawn_codes_are_distinct_of_the_pattern_and_the_alphabet() -> None:
    drawer = CodeDrawer("AB#-##x###", "xyz", CodeCase.UPPER)
    codes = drawer.draw(300)
    assert len(set(codes)) == 300
    for code in codes:
        assert code[:2] == "AB" and code[3] == "-" and code[6] == "X"
        assert set(code[2] + code[4:6] + code[7:]) <= set("XYZ")
    # and: every character of the alphabet turns up, about equally often
    counts = {c: "".join(code[7:] for code in codes).count(c) for c in "XYZ"}
    assert min(counts.values()) > 200
    with pytest.raises(ValidationFailed):
        CodeDrawer("AB#-##x#", "xyz", CodeCase.UPPER).draw(82)
