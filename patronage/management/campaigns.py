"""Management API for campaigns at Talon.One's paths: campaigns, their rulesets and the application's
campaign evaluation groups. Mounted by ``patronage.management.api`` under /applications, so
``/v1/applications/{applicationId}/campaigns`` of Talon.One is ``/api/v1/applications/{id}/campaigns`` here
and the official SDK works with its host set to ``<server>/api``.

Bodies and answers are Talon.One's models (NewCampaign -> Campaign, NewRuleset -> Ruleset,
NewCampaignEvaluationGroup -> CampaignEvaluationGroup); lists are ``{totalResultSize, data}`` paged with
``pageSize``/``skip``. A wrong value is 400 with pointers into the body: ``/limits/0/action``, or
``/rules/0/condition/1/0`` for a rule the compiler refuses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import BaseModel, ConfigDict

from patronage.campaigns.models import Campaign, EvaluationGroup
from patronage.campaigns.plan import base_group
from patronage.campaigns.presenters import campaign_json, evaluation_group_json, ruleset_json
from patronage.campaigns.selectors import budget_usage, budgets_of, campaigns_of
from patronage.campaigns.services import (
    UNSET,
    CampaignInput,
    campaign_create,
    campaign_delete,
    campaign_of,
    campaign_update,
    evaluation_group_create,
    evaluation_group_delete,
    evaluation_group_update,
    ruleset_create,
)
from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.integration.presenters import json_response
from patronage.management.lookups import application_of
from patronage.workspace.models import Application

from .access import management_auth, require
from .pagination import MAX_LIMIT, MAX_OFFSET

router = Router(auth=management_auth, tags=["Campaigns"])

VIEW = "campaigns.view_campaign"
ADD = "campaigns.add_campaign"
CHANGE = "campaigns.change_campaign"
DELETE = "campaigns.delete_campaign"

# Talon.One's sort names -> ours; a leading "-" sorts descending.
SORTS = {"id": "id", "name": "name", "created": "created", "startTime": "start_time", "endTime": "end_time"}


# ---- bodies ---------------------------------------------------------------------------------------------


class Body(BaseModel):
    # Talon.One fields we do not keep (couponSettings, campaignGroups, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")


class CampaignFields(Body):
    description: str | None = None
    startTime: dt.datetime | None = None
    endTime: dt.datetime | None = None
    attributes: dict[str, Any] | None = None
    tags: list[str] | None = None
    features: list[str] | None = None
    # Checked by the service, which points at the faulty entry (/limits/0/action).
    limits: list[Any] | None = None
    type: str | None = None
    # Store integration IDs; Talon.One's SDK sends numbers, we keep them as text.
    linkedStoreIds: list[int | str] | None = None
    evaluationGroupId: int | None = None


class NewCampaign(CampaignFields):
    name: str
    state: str = "enabled"


class UpdateCampaign(CampaignFields):
    """Fields left out keep their value."""

    name: str | None = None
    state: str | None = None


class NewRuleset(Body):
    rules: list[Any]
    bindings: list[Any] = Field(default_factory=list)
    activate: bool = False


class NewCampaignEvaluationGroup(Body):
    name: str
    # The base group's id when left out; the base group itself takes no parent.
    parentId: int | None = None
    description: str = ""
    evaluationMode: str = "stackable"
    evaluationScope: str = "session"
    locked: bool = False


# ---- answers (documentation only: presenters build them, ``json_response`` sends them) -------------------


class LimitConfigOut(Schema):
    action: str
    limit: float
    period: str | None = None
    entities: list[str]


class CampaignBudgetOut(Schema):
    action: str
    limit: float
    counter: float


class CampaignOut(Schema):
    id: int
    created: dt.datetime
    applicationId: int
    userId: int
    name: str
    description: str
    startTime: dt.datetime | None = None
    endTime: dt.datetime | None = None
    attributes: dict[str, Any]
    state: str
    activeRulesetId: int | None = None
    tags: list[str]
    features: list[str]
    limits: list[LimitConfigOut]
    campaignGroups: list[int]
    type: str
    linkedStoreIds: list[int]
    budgets: list[CampaignBudgetOut]
    frontendState: str
    storesImported: bool
    updated: dt.datetime
    evaluationGroupId: int


class RulesetOut(Schema):
    id: int
    created: dt.datetime
    userId: int
    rules: list[Any]
    bindings: list[Any]
    campaignId: int
    activate: bool
    activatedAt: dt.datetime | None = None


class EvaluationGroupOut(Schema):
    id: int
    applicationId: int
    name: str
    parentId: int = Field(description="0 for the application's base group, which has no parent")
    description: str
    evaluationMode: str
    evaluationScope: str
    locked: bool


class CampaignPage(Schema):
    totalResultSize: int
    data: list[CampaignOut]


class RulesetPage(Schema):
    totalResultSize: int
    data: list[RulesetOut]


class EvaluationGroupPage(Schema):
    totalResultSize: int
    data: list[EvaluationGroupOut]


# ---- queries --------------------------------------------------------------------------------------------


class Paging(Schema):
    pageSize: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}")
    skip: int = Field(0, ge=0, le=MAX_OFFSET, description=f"At most {MAX_OFFSET}")


class CampaignFilter(Paging):
    name: str = Field("", description="Part of the name, any case; with tags, either may match")
    tags: str = Field("", description="Part of a tag, any case")
    campaignState: Literal["", "enabled", "running", "disabled", "expired", "archived"] = Field(
        "", description="enabled (scheduled, running or expired), running, disabled, expired or archived"
    )
    sort: str = Field("", description=f"One of {', '.join(SORTS)}; a leading - sorts descending")


# ---- helpers --------------------------------------------------------------------------------------------


def _page(rows: QuerySet[Any], paging: Paging) -> tuple[int, list[Any]]:
    return rows.count(), list(rows[paging.skip : paging.skip + paging.pageSize])


def _input(body: CampaignFields) -> CampaignInput:
    """The fields the body carries; on update, the ones it leaves out stay UNSET (unchanged)."""
    given = body.model_fields_set

    def value(name: str) -> Any:
        return getattr(body, name) if name in given else UNSET

    return CampaignInput(
        name=value("name"),
        description=value("description"),
        state=value("state"),
        start_time=value("startTime"),
        end_time=value("endTime"),
        tags=value("tags"),
        features=value("features"),
        type=value("type"),
        linked_stores=value("linkedStoreIds"),
        attributes=value("attributes"),
        limits=value("limits"),
        evaluation_group_id=value("evaluationGroupId"),
    )


def _campaign_answer(campaign: Campaign, *, status: int = 200) -> HttpResponse:
    return json_response(campaign_json(campaign, budgets=budget_usage(campaign)), status=status)


def _group(application: Application, group_id: int) -> EvaluationGroup:
    group = EvaluationGroup.objects.filter(application=application, pk=group_id).first()
    if group is None:
        raise NotFound(f"Campaign evaluation group {group_id} not found")
    return group


def _sorted(campaigns: QuerySet[Campaign], sort: str) -> QuerySet[Campaign]:
    if not sort:
        return campaigns.order_by("id")
    field = SORTS.get(sort.removeprefix("-"))
    if field is None:
        message = f"Campaigns sort by {', '.join(SORTS)} (a leading - for descending), not {sort!r}"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="query:sort")])
    return campaigns.order_by(f"-{field}" if sort.startswith("-") else field, "id")


# ---- campaigns ------------------------------------------------------------------------------------------


@router.post("/{int:application_id}/campaigns", response={201: CampaignOut}, summary="Create a campaign")
def create_campaign(request: HttpRequest, application_id: int, body: NewCampaign) -> HttpResponse:
    """Lands in the base evaluation group unless ``evaluationGroupId`` names another. Its rules come next,
    with POST .../rulesets."""
    require(request, ADD)
    campaign = campaign_create(
        application=application_of(application_id), data=_input(body), user=request.user
    )
    return _campaign_answer(campaign, status=201)


@router.get("/{int:application_id}/campaigns", response=CampaignPage, summary="List campaigns")
def list_campaigns(request: HttpRequest, application_id: int, filters: Query[CampaignFilter]) -> HttpResponse:
    require(request, VIEW)
    campaigns = campaigns_of(
        application_of(application_id), name=filters.name, tags=filters.tags, state=filters.campaignState
    ).select_related("application")
    total, page = _page(_sorted(campaigns, filters.sort), filters)
    budgets = budgets_of(page)
    return json_response(
        {"totalResultSize": total, "data": [campaign_json(c, budgets=budgets[c.pk]) for c in page]}
    )


@router.get(
    "/{int:application_id}/campaigns/{int:campaign_id}", response=CampaignOut, summary="Get a campaign"
)
def get_campaign(request: HttpRequest, application_id: int, campaign_id: int) -> HttpResponse:
    require(request, VIEW)
    return _campaign_answer(campaign_of(application_of(application_id), campaign_id))


@router.put(
    "/{int:application_id}/campaigns/{int:campaign_id}", response=CampaignOut, summary="Change a campaign"
)
def update_campaign(
    request: HttpRequest, application_id: int, campaign_id: int, body: UpdateCampaign
) -> HttpResponse:
    require(request, CHANGE)
    campaign = campaign_of(application_of(application_id), campaign_id)
    return _campaign_answer(campaign_update(campaign=campaign, data=_input(body), user=request.user))


@router.delete(
    "/{int:application_id}/campaigns/{int:campaign_id}", response={204: None}, summary="Delete a campaign"
)
def delete_campaign(request: HttpRequest, application_id: int, campaign_id: int) -> HttpResponse:
    """It stops at once and leaves every list; the effects it gave stay in the ledger."""
    require(request, DELETE)
    campaign_delete(campaign=campaign_of(application_of(application_id), campaign_id))
    return json_response(None, status=204)


# ---- rulesets -------------------------------------------------------------------------------------------


@router.post(
    "/{int:application_id}/campaigns/{int:campaign_id}/rulesets",
    response={201: RulesetOut},
    summary="Add a version of a campaign's rules",
)
def create_ruleset(
    request: HttpRequest, application_id: int, campaign_id: int, body: NewRuleset
) -> HttpResponse:
    """Rules in Talang, compiled before they are kept; with ``activate`` the campaign runs them from the
    next request on."""
    require(request, CHANGE)
    campaign = campaign_of(application_of(application_id), campaign_id)
    ruleset = ruleset_create(
        campaign=campaign, rules=body.rules, bindings=body.bindings, activate=body.activate, user=request.user
    )
    return json_response(ruleset_json(ruleset), status=201)


@router.get(
    "/{int:application_id}/campaigns/{int:campaign_id}/rulesets",
    response=RulesetPage,
    summary="List a campaign's rulesets",
)
def list_rulesets(
    request: HttpRequest, application_id: int, campaign_id: int, paging: Query[Paging]
) -> HttpResponse:
    """Newest version first."""
    require(request, VIEW)
    campaign = campaign_of(application_of(application_id), campaign_id)
    total, page = _page(campaign.rulesets.order_by("-version"), paging)
    return json_response({"totalResultSize": total, "data": [ruleset_json(r) for r in page]})


@router.get(
    "/{int:application_id}/campaigns/{int:campaign_id}/rulesets/{int:ruleset_id}",
    response=RulesetOut,
    summary="Get a ruleset",
)
def get_ruleset(request: HttpRequest, application_id: int, campaign_id: int, ruleset_id: int) -> HttpResponse:
    require(request, VIEW)
    campaign = campaign_of(application_of(application_id), campaign_id)
    ruleset = campaign.rulesets.filter(pk=ruleset_id).first()
    if ruleset is None:
        raise NotFound(f"Ruleset {ruleset_id} not found in campaign {campaign_id}")
    return json_response(ruleset_json(ruleset))


# ---- campaign evaluation groups -------------------------------------------------------------------------


@router.post(
    "/{int:application_id}/campaign_evaluation_groups",
    response={201: EvaluationGroupOut},
    summary="Create a campaign evaluation group",
)
def create_evaluation_group(
    request: HttpRequest, application_id: int, body: NewCampaignEvaluationGroup
) -> HttpResponse:
    require(request, CHANGE)
    group = evaluation_group_create(
        application=application_of(application_id),
        name=body.name,
        parent_id=body.parentId,
        mode=body.evaluationMode,
        scope=body.evaluationScope,
        description=body.description,
        locked=body.locked,
    )
    return json_response(evaluation_group_json(group), status=201)


@router.get(
    "/{int:application_id}/campaign_evaluation_groups",
    response=EvaluationGroupPage,
    summary="List campaign evaluation groups",
)
def list_evaluation_groups(request: HttpRequest, application_id: int, paging: Query[Paging]) -> HttpResponse:
    """The base group first (``parentId`` 0), then the others as the tree orders them."""
    require(request, VIEW)
    application = application_of(application_id)
    base_group(application)  # made on first use: the list always shows where new campaigns land
    groups = EvaluationGroup.objects.filter(application=application).order_by(
        F("parent_id").asc(nulls_first=True), "position", "id"
    )
    total, page = _page(groups, paging)
    return json_response({"totalResultSize": total, "data": [evaluation_group_json(g) for g in page]})


@router.get(
    "/{int:application_id}/campaign_evaluation_groups/{int:group_id}",
    response=EvaluationGroupOut,
    summary="Get a campaign evaluation group",
)
def get_evaluation_group(request: HttpRequest, application_id: int, group_id: int) -> HttpResponse:
    require(request, VIEW)
    return json_response(evaluation_group_json(_group(application_of(application_id), group_id)))


@router.put(
    "/{int:application_id}/campaign_evaluation_groups/{int:group_id}",
    response=EvaluationGroupOut,
    summary="Change a campaign evaluation group",
)
def update_evaluation_group(
    request: HttpRequest, application_id: int, group_id: int, body: NewCampaignEvaluationGroup
) -> HttpResponse:
    """The base group takes a new name, mode and description only."""
    require(request, CHANGE)
    group = _group(application_of(application_id), group_id)
    group = evaluation_group_update(
        group=group,
        name=body.name,
        parent_id=body.parentId or group.parent_id,
        mode=body.evaluationMode,
        scope=body.evaluationScope,
        description=body.description,
        locked=body.locked,
    )
    return json_response(evaluation_group_json(group))


@router.delete(
    "/{int:application_id}/campaign_evaluation_groups/{int:group_id}",
    response={204: None},
    summary="Delete a campaign evaluation group",
)
def delete_evaluation_group(request: HttpRequest, application_id: int, group_id: int) -> HttpResponse:
    """Only an empty group other than the base: move its campaigns and groups out first (400 otherwise)."""
    require(request, CHANGE)
    evaluation_group_delete(group=_group(application_of(application_id), group_id))
    return json_response(None, status=204)
