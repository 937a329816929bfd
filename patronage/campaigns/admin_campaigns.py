"""Campaigns in the back office: the list (state, schedule, budgets, the last 30 days), the campaign page
(settings, budgets, the rule builder over Talang, a daily chart), new campaigns from templates, the
evaluation tree of an application and "Try it" (a dry run of a cart). Registered by admin.py.

Every write is a service of ``services``; the Talang compiler is the rules' only validator (the builder
only draws what it says); Try it is ``session_update(dry=True)``, which writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.views import ChangeList

from patronage.core import clock
from patronage.core.admin_paging import PerPageMixin
from patronage.core.errors import DomainError
from patronage.core.money import format_money
from patronage.customer_sessions.services import SessionInput, session_update
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .evaluation import period_key
from .forms import CampaignForm, TemplateForm, TryItForm
from .models import BudgetCounter, Campaign, CampaignState, EffectRecord, EvaluationGroup, EvaluationMode
from .plan import base_group
from .registry import BUDGET_ACTIONS, catalogue
from .services import (
    CampaignInput,
    campaign_create,
    campaign_delete,
    campaign_update,
    evaluation_group_create,
    evaluation_group_update,
    evaluation_order_set,
    ruleset_create,
)
from .templates_catalog import TEMPLATES

DAYS = 30
FRONTEND_STATES = {
    "running": ("Running", "green"),
    "scheduled": ("Scheduled", "blue"),
    "expired": ("Expired", "orange"),
    "disabled": ("Disabled", "base"),
    "archived": ("Archived", "base"),
}
BADGE = {
    "green": "bg-green-100 text-green-700 dark:bg-green-500/20 dark:text-green-400",
    "blue": "bg-blue-100 text-blue-700 dark:bg-blue-500/20 dark:text-blue-400",
    "orange": "bg-orange-100 text-orange-700 dark:bg-orange-500/20 dark:text-orange-400",
    "base": "bg-base-100 text-base-700 dark:bg-base-500/20 dark:text-base-200",
}
PERIOD_WORDS = {
    "": "in total",
    "daily": "today",
    "weekly": "this week",
    "monthly": "this month",
    "yearly": "this year",
}


def _zone(application: Application) -> ZoneInfo:
    return ZoneInfo(application.time_zone or "UTC")


def _since(now: dt.datetime) -> dt.datetime:
    """The first instant of the last 30 days (UTC days, today included), as the dashboard counts them."""
    return dt.datetime.combine(now.date() - dt.timedelta(days=DAYS - 1), dt.time(), tzinfo=dt.UTC)


def state_badge(state: str) -> str:
    label, colour = FRONTEND_STATES.get(state, (state.title(), "base"))
    return format_html(
        '<span class="{} font-semibold inline-block leading-normal px-2 py-0.5 rounded-default text-xs '
        'uppercase" data-state="{}">{}</span>',
        BADGE[colour],
        state,
        label,
    )


# ---- figures: one query per list page, not one per row -------------------------------------------------


@dataclass
class Recent:
    sessions: int = 0
    discount: Decimal = Decimal(0)


@dataclass
class Usage:
    label: str
    used: Decimal
    limit: Decimal
    scope: str
    money: bool
    currency: str

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if self.used else 0
        return min(100, int(self.used * 100 / self.limit))

    @property
    def text(self) -> str:
        if self.money:
            return f"{format_money(self.used, self.currency)} of {format_money(self.limit, self.currency)}"
        return f"{self.used.normalize():,f} of {self.limit.normalize():,f}"


def recent_figures(campaign_ids: list[int], now: dt.datetime) -> dict[int, Recent]:
    """Triggered sessions (distinct) and discount still granted (amount - released), last 30 days."""
    rows = (
        EffectRecord.objects.filter(campaign_id__in=campaign_ids, created__gte=_since(now))
        .values("campaign_id")
        .annotate(sessions=Count("session_id", distinct=True), discount=Sum(F("amount") - F("released")))
        .order_by()
    )
    return {r["campaign_id"]: Recent(r["sessions"], r["discount"] or Decimal(0)) for r in rows}


def budget_usage(campaigns: list[Campaign], now: dt.datetime) -> dict[int, list[Usage]]:
    """Each campaign-wide budget's counter in its current period; budgets per customer, store, ... count
    per entity, so the list only names them."""
    counters = {
        (c, action, period): counter
        for c, action, period, counter in BudgetCounter.objects.filter(
            campaign_id__in=[c.pk for c in campaigns], entity_key=""
        ).values_list("campaign_id", "action", "period", "counter")
    }
    usage: dict[int, list[Usage]] = {}
    for campaign in campaigns:
        app = campaign.application
        local = now.astimezone(_zone(app))
        rows = usage.setdefault(campaign.pk, [])
        for limit in campaign.limits or []:
            entities = limit.get("entities") or []
            period = limit.get("period") or ""
            key = (campaign.pk, limit["action"], period_key(period, local))
            label = BUDGET_ACTIONS.get(limit["action"], limit["action"])
            scope = f"per {' + '.join(entities)}" if entities else PERIOD_WORDS.get(period, period)
            rows.append(
                Usage(
                    label=label,
                    used=Decimal(0) if entities else counters.get(key, Decimal(0)),
                    limit=Decimal(str(limit["limit"])),
                    scope=scope,
                    money=limit["action"] == "setDiscount",
                    currency=app.currency,
                )
            )
    return usage


@dataclass
class Day:
    date: dt.date
    sessions: int = 0
    discount: Decimal = Decimal(0)


def daily_figures(campaign: Campaign, now: dt.datetime) -> list[Day]:
    days = {
        now.date() - dt.timedelta(days=n): Day(now.date() - dt.timedelta(days=n))
        for n in range(DAYS - 1, -1, -1)
    }
    rows = (
        EffectRecord.objects.filter(campaign=campaign, created__gte=_since(now))
        .annotate(day=TruncDate("created", tzinfo=dt.UTC))
        .values("day")
        .annotate(sessions=Count("session_id", distinct=True), discount=Sum(F("amount") - F("released")))
        .order_by()
    )
    for row in rows:
        day = days.get(row["day"])
        if day is not None:
            day.sessions, day.discount = row["sessions"], row["discount"] or Decimal(0)
    return list(days.values())


CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 100, 2


def chart_bars(days: list[Day], value: str, title: Any) -> list[dict[str, Any]]:
    """Bars of an inline SVG chart, as the dashboard draws them (no script, no CDN)."""
    values = [Decimal(getattr(d, value)) for d in days]
    most = max(values, default=Decimal(0)) or Decimal(1)
    width = CHART_WIDTH / max(len(days), 1)
    bars = []
    for i, (day, amount) in enumerate(zip(days, values, strict=True)):
        height = round(float(amount) * (CHART_HEIGHT - 4) / float(most), 1) if amount else 0
        bars.append(
            {
                "x": round(i * width + BAR_GAP / 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(width - BAR_GAP, 1),
                "height": height,
                "title": f"{day.date:%Y-%m-%d}: {title(day)}",
            }
        )
    return bars


# ---- the list ------------------------------------------------------------------------------------------


class StateFilter(admin.SimpleListFilter):
    """Talon.One's computed state: running, scheduled and expired are enabled campaigns by their dates."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in FRONTEND_STATES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> QuerySet[Campaign] | None:
        now = clock.now()
        enabled = queryset.filter(state=CampaignState.ENABLED)
        value = self.value()
        if value == "running":
            return enabled.filter(
                Q(start_time=None) | Q(start_time__lte=now), Q(end_time=None) | Q(end_time__gt=now)
            )
        if value == "scheduled":
            return enabled.filter(start_time__gt=now).exclude(end_time__lte=now)
        if value == "expired":
            return enabled.filter(end_time__lte=now)
        if value in (CampaignState.DISABLED, CampaignState.ARCHIVED):
            return queryset.filter(state=value)
        return None


class CampaignChangeList(PerPageMixin, ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page's figures in two queries, whatever the page size.
        page = list(self.result_list)
        now = clock.now()
        self.recent = recent_figures([c.pk for c in page], now)
        self.usage = budget_usage(page, now)
        for campaign in page:
            campaign.recent = self.recent.get(campaign.pk, Recent())  # type: ignore[attr-defined]
            campaign.usage = self.usage.get(campaign.pk, [])  # type: ignore[attr-defined]


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    form = CampaignForm
    list_display = [
        "name",
        "application",
        "frontend_state_badge",
        "schedule",
        "evaluation_group",
        "budgets",
        "sessions_30_days",
        "discount_30_days",
    ]
    list_display_links = ["name"]
    list_filter = ["application", StateFilter]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name"]
    search_help_text = "Campaign name"
    list_select_related = ["application__environment", "evaluation_group"]
    list_before_template = "admin/campaigns/campaign/list_toolbar.html"
    change_form_template = "admin/campaigns/campaign/change_form.html"
    actions = None  # deleting keeps the row for its history: one campaign at a time, with a confirmation

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).filter(deleted_at=None)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CampaignChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None) -> Any:
        return [
            (None, {"fields": ["application", "name", "description", "state", "tags"]}),
            ("Schedule and evaluation", {"fields": ["start_time", "end_time", "evaluation_group"]}),
            ("Budgets", {"fields": ["limits"], "classes": ["campaign-budgets"]}),
            ("Rules", {"fields": ["rules"], "classes": ["campaign-rules"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> list[str]:
        # Its ledger, budgets and evaluation group belong to one application.
        return ["application"] if obj is not None else []

    # Columns.

    @admin.display(description="State", ordering="state")
    def frontend_state_badge(self, campaign: Campaign) -> str:
        return state_badge(campaign.frontend_state())

    @admin.display(description="Schedule", ordering="start_time")
    def schedule(self, campaign: Campaign) -> str:
        tz = _zone(campaign.application)
        start = f"{campaign.start_time.astimezone(tz):%Y-%m-%d %H:%M}" if campaign.start_time else ""
        end = f"{campaign.end_time.astimezone(tz):%Y-%m-%d %H:%M}" if campaign.end_time else ""
        if not start and not end:
            return "Always"
        if not end:
            return f"From {start}"
        if not start:
            return f"Until {end}"
        return f"{start} to {end}"

    @admin.display(description="Budgets")
    def budgets(self, campaign: Campaign) -> str:
        usage: list[Usage] = getattr(campaign, "usage", [])
        if not usage:
            return format_html(
                '<span class="text-font-subtle-light dark:text-font-subtle-dark">{}</span>', "None"
            )
        return format_html_join(
            "",
            '<div class="campaign-budget min-w-40 mb-1" title="{0}: {1} {2}"><div class="flex gap-2 text-xs">'
            '<span>{0}</span><span class="ml-auto whitespace-nowrap">{1}</span></div>'
            '<div class="bg-base-100 h-1.5 overflow-hidden rounded-default dark:bg-base-800">'
            '<div class="h-1.5 {3}" style="width:{4}%"></div></div>'
            '<div class="text-xs text-font-subtle-light dark:text-font-subtle-dark">{2}</div></div>',
            (
                (
                    u.label,
                    u.text if not u.scope.startswith("per ") else f"limit {u.limit.normalize():,f}",
                    u.scope,
                    "bg-red-600" if u.percent >= 90 else "bg-primary-600",
                    u.percent,
                )
                for u in usage
            ),
        )

    @admin.display(description="Sessions, 30 days")
    def sessions_30_days(self, campaign: Campaign) -> int:
        recent: Recent = getattr(campaign, "recent", Recent())
        return recent.sessions

    @admin.display(description="Discount, 30 days")
    def discount_30_days(self, campaign: Campaign) -> str:
        recent: Recent = getattr(campaign, "recent", Recent())
        return format_money(recent.discount, campaign.application.currency)

    # Saving: the services, and a new ruleset version when the rules changed.

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        data = form.campaign_input()
        rules = form.cleaned_data["rules"]
        if change:
            # The stored row: the form already wrote its own values (an empty group too) into obj.
            stored = Campaign.objects.select_related("active_ruleset", "application").get(pk=obj.pk)
            if data.evaluation_group_id is None:
                data.evaluation_group_id = base_group(stored.application).pk
            before = stored.active_ruleset.rules if stored.active_ruleset else []
            saved = campaign_update(campaign=stored, data=data, user=request.user)
        else:
            before = []
            saved = campaign_create(
                application=form.cleaned_data["application"], data=data, user=request.user
            )
        if rules != before:
            ruleset_create(
                campaign=saved, rules=rules, bindings=form.bindings(), activate=True, user=request.user
            )
            saved.refresh_from_db()
        for model_field in Campaign._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the services saved everything

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        form = context["adminform"].form
        obj: Campaign | None = kwargs.get("obj")
        applications = Application.objects.order_by("name")
        context["builder"] = {
            "catalogue": catalogue(),
            "problems": form.rule_problems,
            "periods": ["daily", "weekly", "monthly", "yearly"],
            "currencies": {str(a.pk): a.currency for a in applications},
        }
        if obj is not None and obj.pk:
            now = clock.now()
            days = daily_figures(obj, now)
            currency = obj.application.currency
            context["campaign_figures"] = {
                "sessions": sum(d.sessions for d in days),
                "discount": format_money(sum((d.discount for d in days), Decimal(0)), currency),
                "first": days[0].date,
                "last": days[-1].date,
                "width": CHART_WIDTH,
                "height": CHART_HEIGHT,
                "session_bars": chart_bars(
                    days, "sessions", lambda d: f"{d.sessions} session{'s' if d.sessions != 1 else ''}"
                ),
                "discount_bars": chart_bars(days, "discount", lambda d: format_money(d.discount, currency)),
                "usage": budget_usage([obj], now).get(obj.pk, []),
                "ruleset": obj.active_ruleset,
            }
            context["try_url"] = reverse("admin:campaigns_campaign_try", args=[obj.pk])
            context["tree_url"] = (
                reverse("admin:campaigns_campaign_tree") + f"?application={obj.application_id}"
            )
        return super().render_change_form(request, context, *args, **kwargs)

    # Deleting.

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        campaign = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_delete_permission(request, campaign):
            raise PermissionDenied
        if request.method == "POST":
            campaign_delete(campaign=campaign)
            self.log_deletions(request, Campaign.objects.filter(pk=campaign.pk))
            self.message_user(request, f"Deleted the campaign “{campaign.name}”.", messages.SUCCESS)
            return redirect("admin:campaigns_campaign_changelist")
        effects = campaign.effect_records.count()
        return self._page(
            request, "delete_confirm.html", title="Delete campaign?", campaign=campaign, effects=effects
        )

    # Pages of our own.

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("from-template/", view(self.from_template_view), name="campaigns_campaign_from_template"),
            path("tree/", view(self.tree_view), name="campaigns_campaign_tree"),
            path("<int:object_id>/try/", view(self.try_view), name="campaigns_campaign_try"),
            *super().get_urls(),
        ]

    def _page(self, request: HttpRequest, template: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/campaigns/campaign/{template}",
            {**self.admin_site.each_context(request), "opts": self.model._meta, **context},
        )

    def _application(self, request: HttpRequest) -> Application | None:
        wanted = request.GET.get("application") or request.POST.get("application") or ""
        applications = Application.objects.select_related("environment").order_by("name")
        return applications.filter(pk=wanted).first() if wanted.isdigit() else applications.first()

    def from_template_view(self, request: HttpRequest) -> HttpResponseBase:
        """The templates as cards, each with its few questions, for one application."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        application = self._application(request)
        forms_ = []
        if application is not None:
            chosen = request.POST.get("template") if request.method == "POST" else None
            for template in TEMPLATES.values():
                posted = request.POST if template.key == chosen else None
                forms_.append(TemplateForm(posted, template=template, application=application))
            for form in forms_:
                if form.is_bound and form.is_valid():
                    try:
                        campaign = self._create_from_template(request, application, form)
                    except DomainError as exc:
                        for detail in exc.details:
                            form.add_error("name" if detail.pointer == "/name" else None, detail.details)
                    else:
                        self.message_user(
                            request,
                            f"Created “{campaign.name}” from the template “{form.template.label}”. "
                            "It is disabled: try it on a cart, then switch it on.",
                            messages.SUCCESS,
                        )
                        return redirect("admin:campaigns_campaign_change", campaign.pk)
        return self._page(
            request,
            "from_template.html",
            title="New campaign from a template",
            application=application,
            applications=Application.objects.order_by("name"),
            forms=forms_,
        )

    def _create_from_template(
        self, request: HttpRequest, application: Application, form: TemplateForm
    ) -> Campaign:
        from django.db import transaction

        with transaction.atomic():
            campaign = campaign_create(
                application=application,
                data=CampaignInput(
                    name=form.cleaned_data["name"], state=CampaignState.DISABLED, template=form.template.key
                ),
                user=request.user,
            )
            ruleset_create(campaign=campaign, rules=form.rules(), activate=True, user=request.user)
            self.log_addition(request, campaign, [{"added": {}}])
        return campaign

    def tree_view(self, request: HttpRequest) -> HttpResponseBase:
        """An application's evaluation tree: groups with their mode, campaigns in the order they run."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        application = self._application(request)
        if application is None:
            return self._page(request, "tree.html", title="Evaluation tree", application=None)
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            try:
                said = self._tree_change(application, request.POST)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, said, messages.SUCCESS)
            return redirect(reverse("admin:campaigns_campaign_tree") + f"?application={application.pk}")
        root = tree_of(application)
        return self._page(
            request,
            "tree.html",
            title=f"Evaluation tree of {application.name}",
            application=application,
            applications=Application.objects.order_by("name"),
            root=root,
            modes=EvaluationMode.choices,
            groups=[g for g in root.walk_groups() if g.depth < EvaluationGroup.MAX_DEPTH + 1],
            can_change=self.has_change_permission(request),
        )

    def _tree_change(self, application: Application, post: Any) -> str:
        action = post.get("action")
        if action == "move":
            group = get_object_or_404(EvaluationGroup, application=application, pk=post.get("group"))
            node = next(n for n in tree_of(application).walk_groups() if n.group.pk == group.pk)
            order = [(c.kind, c.pk) for c in node.children]
            at = order.index((post.get("kind"), int(post.get("id") or 0)))
            to = at - 1 if post.get("direction") == "up" else at + 1
            if 0 <= to < len(order):
                order[at], order[to] = order[to], order[at]
                evaluation_order_set(application=application, group=group, children=order)
            moved = node.children[at]
            return f"Moved “{moved.name}” {'up' if to < at else 'down'}."
        if action == "mode":
            group = get_object_or_404(EvaluationGroup, application=application, pk=post.get("group"))
            evaluation_group_update(
                group=group,
                name=group.name,
                parent_id=group.parent_id,
                mode=post.get("mode") or "",
                scope=group.scope,
                description=group.description,
                locked=group.locked,
            )
            return f"“{group.name}” now evaluates as: {EvaluationMode(group.mode).label}."
        if action == "create":
            parent = post.get("parent") or ""
            group = evaluation_group_create(
                application=application,
                name=post.get("name") or "",
                parent_id=int(parent) if parent.isdigit() else None,
                mode=post.get("mode") or EvaluationMode.STACKABLE,
            )
            return f"Added the group “{group.name}”. Move campaigns into it from their pages."
        raise DomainError("Nothing to do: pick a move, a mode or a new group.")

    def try_view(self, request: HttpRequest, object_id: int) -> HttpResponseBase:
        """A dry run of a cart through this campaign and the application's enabled ones; nothing is saved."""
        campaign = get_object_or_404(self.get_queryset(request).select_related("application"), pk=object_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        application = campaign.application
        form = TryItForm(request.POST if request.method == "POST" else None)
        result = None
        if form.is_bound and form.is_valid():
            try:
                result = try_cart(campaign, form.cleaned_data)
            except DomainError as exc:
                for detail in exc.details:
                    form.add_error(None, detail.details)
        return self._page(
            request,
            "try.html",
            title=f"Try “{campaign.name}”",
            campaign=campaign,
            application=application,
            form=form,
            result=result,
            change_url=reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        )


# ---- the evaluation tree -------------------------------------------------------------------------------


@dataclass
class TreeNode:
    kind: str  # "group" or "campaign"
    pk: int
    name: str
    position: int
    depth: int
    group: Any = None
    campaign: Any = None
    children: list[TreeNode] = field(default_factory=list)

    def walk_groups(self) -> list[TreeNode]:
        found = [self] if self.kind == "group" else []
        for child in self.children:
            found += child.walk_groups()
        return found

    @property
    def state(self) -> str:
        return self.campaign.frontend_state() if self.campaign is not None else ""

    @property
    def badge(self) -> str:
        return state_badge(self.state) if self.campaign is not None else ""


def tree_of(application: Application) -> TreeNode:
    """The tree in the engine's order (``plan.build``): each group's children by position, then id."""
    base = base_group(application)
    groups = list(EvaluationGroup.objects.filter(application=application))
    campaigns = list(Campaign.objects.filter(application=application, deleted_at=None))

    def node(group: EvaluationGroup, depth: int) -> TreeNode:
        children = [node(g, depth + 1) for g in groups if g.parent_id == group.pk]
        children += [
            TreeNode("campaign", c.pk, c.name, c.position, depth + 1, campaign=c)
            for c in campaigns
            if c.evaluation_group_id == group.pk
            or (group.pk == base.pk and c.evaluation_group_id not in {g.pk for g in groups})
        ]
        children.sort(key=lambda n: (n.position, n.pk))
        return TreeNode("group", group.pk, group.name, group.position, depth, group=group, children=children)

    return node(base, 0)


# ---- Try it --------------------------------------------------------------------------------------------


@dataclass
class Tried:
    customer_known: bool
    effects: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    triggered: list[str]
    raw: str
    total_discount: str


SCOPE_WORDS = {
    "sessionTotal": "session total",
    "cartItems": "cart items",
    "additionalCosts": "additional costs",
}


def _effect_words(effect: dict[str, Any], currency: str, cart: list[Any]) -> tuple[str, str]:
    """An effect as the marketer reads it: what and how much."""
    props, kind = effect.get("props") or {}, effect.get("effectType", "")
    money = format_money(Decimal(str(props["value"])), currency) if "value" in props else ""
    if kind == "setDiscount":
        scope = SCOPE_WORDS.get(props.get("scope", ""), props.get("scope", "session"))
        return f"Discount “{props.get('name', '')}” on the {scope}", money
    if kind == "setDiscountPerItem":
        position = int(props.get("position", 0))
        line = (
            f"{cart[position].name or cart[position].sku}" if position < len(cart) else f"line {position + 1}"
        )
        return f"Discount “{props.get('name', '')}” on {line} (cart line {position + 1})", money
    if kind == "setDiscountPerAdditionalCost":
        return (
            f"Discount “{props.get('name', '')}” on {props.get('additionalCost', 'an additional cost')}",
            money,
        )
    if kind == "addFreeItem":
        return f"Free item {props.get('name', '')} ({props.get('sku', '')})", ""
    if kind == "showNotification":
        return f"Notification “{props.get('title', '')}”: {props.get('body', '')}", ""
    if kind == "updateAttribute":
        return f"Set {props.get('path', '')} to {props.get('value')!r}", ""
    if kind == "triggerWebhook":
        return f"Call the webhook {props.get('webhookName', '')}", ""
    return kind, money or json.dumps(props)


def try_cart(campaign: Campaign, data: dict[str, Any]) -> Tried:
    application = campaign.application
    enabled = Campaign.objects.filter(application=application, deleted_at=None, state=CampaignState.ENABLED)
    ids = [campaign.pk, *enabled.exclude(pk=campaign.pk).values_list("pk", flat=True)]
    customer = (data.get("customer") or "").strip()
    shipping = data.get("shipping")
    result = session_update(
        application=application,
        integration_id=f"try-it-{secrets.token_hex(8)}",
        data=SessionInput(
            profile_id=customer or None,
            cart_items=data.get("cart") or [],
            additional_costs={"shipping": shipping} if shipping is not None else None,
        ),
        dry=True,
        evaluable_campaign_ids=ids,
        response_content={"ruleFailureReasons", "triggeredCampaigns"},
    )
    context = result.context
    effects = result.effects
    names = dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name"))
    shown, total = [], Decimal(0)
    for effect in effects:
        what, amount = _effect_words(effect, application.currency, data.get("cart") or [])
        if "value" in (effect.get("props") or {}) and effect.get("effectType", "").startswith("setDiscount"):
            total += Decimal(str(effect["props"]["value"]))
        shown.append(
            {
                "campaign": names.get(effect["campaignId"], effect["campaignId"]),
                "mine": effect.get("campaignId") == campaign.pk,
                "rule": effect.get("ruleName", ""),
                "type": effect.get("effectType", ""),
                "what": what,
                "amount": amount,
            }
        )
    failures = [
        {
            "campaign": f.get("campaignName", ""),
            "rule": f.get("ruleName", ""),
            "why": _failure_words(f),
        }
        for f in (context.rule_failure_reasons if context else [])
    ]
    triggered = [c["name"] for c in (context.triggered_campaigns if context else [])]
    raw = {
        "effects": effects,
        "triggeredCampaigns": [c["id"] for c in (context.triggered_campaigns if context else [])],
        "ruleFailureReasons": context.rule_failure_reasons if context else [],
    }
    known = (
        not customer
        or CustomerProfile.objects.filter(
            environment_id=application.environment_id, integration_id=customer
        ).exists()
    )
    return Tried(
        customer_known=known,
        effects=shown,
        failures=failures,
        triggered=triggered,
        raw=json.dumps(raw, indent=2, default=str),
        total_discount=format_money(total, application.currency),
    )


def _failure_words(reason: dict[str, Any]) -> str:
    details = str(reason.get("details") or "")
    if "conditionIndex" in reason:
        n = int(reason["conditionIndex"]) + 1
        return f"Condition {n}: {details}" if details != "condition not met" else f"Condition {n} is not met."
    if "effectIndex" in reason:
        return f"Effect {int(reason['effectIndex']) + 1}: {details}"
    return details or "Not applied."
