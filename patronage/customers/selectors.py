"""Reads over customer profiles: the search and filters shared by the back-office list and the export.

Every filter is a small function on a queryset so the admin's list filters, the CSV export (list page and
CLI) and later features (segments) give one meaning to one word. ``CustomerFilters`` is the whole set, with
the URL/CLI vocabulary in ``from_params``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from patronage.core.errors import ErrorCollector
from patronage.workspace.models import Application, Environment

from .attributes import normalize_phone
from .models import CustomerGroup, CustomerProfile

# Later features (offers, promo codes) register "who redeemed something between these instants" here as a
# function returning a queryset of profile ids; the redemption filter ORs them.
RedemptionSource = Callable[[dt.datetime | None, dt.datetime | None], QuerySet[Any]]
REDEMPTION_SOURCES: dict[str, RedemptionSource] = {}

_PHONE_CHARS = re.compile(r"^[\d\s+().\-/]+$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")


def search(queryset: QuerySet[CustomerProfile], term: str) -> QuerySet[CustomerProfile]:
    """Name, email, integration ID, or a phone number typed in any common format (matched normalized)."""
    term = term.strip()
    if not term:
        return queryset
    if "@" in term and " " not in term:
        return queryset.filter(email__icontains=term)
    query = Q(name__icontains=term) | Q(email__icontains=term) | Q(integration_id__icontains=term)
    if _PHONE_CHARS.match(term) and sum(c.isdigit() for c in term) >= 4:
        try:
            query |= Q(phone=normalize_phone(term))
        except ValueError:
            # Part of a number: match the digits anywhere in the stored E.164 form.
            query |= Q(phone__contains=re.sub(r"\D", "", term))
    return queryset.filter(query)


def day_bounds(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Inclusive calendar dates -> [start of the first day, start of the day after the last) as instants.

    The calendar's last day (9999-12-31) has no day after it: up to it is no upper bound at all."""
    tz = timezone.get_current_timezone()
    lower = dt.datetime.combine(start, dt.time(), tzinfo=tz) if start else None
    upper = None
    if end and end < dt.date.max:
        upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return lower, upper


def instant_between(
    queryset: QuerySet[CustomerProfile], field_name: str, start: dt.date | None, end: dt.date | None
) -> QuerySet[CustomerProfile]:
    lower, upper = day_bounds(start, end)
    if lower:
        queryset = queryset.filter(**{f"{field_name}__gte": lower})
    if upper:
        queryset = queryset.filter(**{f"{field_name}__lt": upper})
    return queryset


def in_groups(
    queryset: QuerySet[CustomerProfile], group_ids: Sequence[int], *, no_group: bool = False
) -> QuerySet[CustomerProfile]:
    """Customers of any of these groups, and with ``no_group`` also those in none."""
    if not group_ids and not no_group:
        return queryset
    query = Q(group_id__in=list(group_ids)) if group_ids else Q(pk__in=[])
    if no_group:
        query |= Q(group__isnull=True)
    return queryset.filter(query)


def birthday_between(
    queryset: QuerySet[CustomerProfile], start: dt.date | None, end: dt.date | None
) -> QuerySet[CustomerProfile]:
    if start:
        queryset = queryset.filter(birth_date__gte=start)
    if end:
        queryset = queryset.filter(birth_date__lte=end)
    return queryset


def birthday_window_q(start_md: int, end_md: int) -> Q:
    """Birthdays from one month-day to another whatever the year; a window may wrap over New Year."""
    if start_md <= end_md:
        return Q(birth_md__gte=start_md, birth_md__lte=end_md)
    return Q(birth_md__gte=start_md) | Q(birth_md__lte=end_md)


def birthday_window(
    queryset: QuerySet[CustomerProfile], start_md: int, end_md: int
) -> QuerySet[CustomerProfile]:
    return queryset.filter(birthday_window_q(start_md, end_md))


def orders_between(
    queryset: QuerySet[CustomerProfile], minimum: int | None, maximum: int | None
) -> QuerySet[CustomerProfile]:
    if minimum is not None:
        queryset = queryset.filter(closed_sessions__gte=minimum)
    if maximum is not None:
        queryset = queryset.filter(closed_sessions__lte=maximum)
    return queryset


def redeemed_between(
    queryset: QuerySet[CustomerProfile], start: dt.date | None, end: dt.date | None
) -> QuerySet[CustomerProfile]:
    lower, upper = day_bounds(start, end)
    query = Q(pk__in=[])
    for source in REDEMPTION_SOURCES.values():
        query |= Q(Exists(source(lower, upper).filter(pk=OuterRef("pk"))))
    return queryset.filter(query)


def parse_month_day(raw: str) -> int:
    """'05-17' or '5-17' -> 517; ValueError with the reason otherwise (Feb 29 is a valid birthday)."""
    match = _MONTH_DAY.match(raw.strip())
    if not match:
        raise ValueError(f"{raw!r} is not a month and day such as 05-17")
    month, day = int(match[1]), int(match[2])
    try:
        dt.date(2000, month, day)  # a leap year, so 02-29 passes
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not a day of the year") from exc
    return month * 100 + day


def _yes_no(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"yes", "true", "1"}:
        return True
    if value in {"no", "false", "0"}:
        return False
    raise ValueError(f"{raw!r} is not yes or no")


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not a date such as 2026-05-17") from exc


def _count(raw: str) -> int:
    if not raw.strip().isdigit():
        raise ValueError(f"{raw!r} is not a whole number")
    return int(raw)


@dataclass
class CustomerFilters:
    """Every list filter; ``None``/empty means "not filtered". Names are the URL and CLI vocabulary."""

    q: str = ""
    group: list[int] = field(default_factory=list)
    no_group: bool = False
    tax_exempt: bool | None = None
    accepts_marketing: bool | None = None
    orders_min: int | None = None
    orders_max: int | None = None
    birthday_from: dt.date | None = None
    birthday_to: dt.date | None = None
    birthday_window_from: int | None = None
    birthday_window_to: int | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    active_from: dt.date | None = None
    active_to: dt.date | None = None
    redeemed_from: dt.date | None = None
    redeemed_to: dt.date | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]], *, errors: ErrorCollector) -> CustomerFilters:
        """Parse ``{name: [values]}`` (a QueryDict's lists or CLI options); bad values go to ``errors``."""
        parsers: dict[str, Callable[[str], Any]] = {
            "tax_exempt": _yes_no,
            "accepts_marketing": _yes_no,
            "orders_min": _count,
            "orders_max": _count,
            "birthday_window_from": parse_month_day,
            "birthday_window_to": parse_month_day,
        }
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = [v for v in params.get(spec.name, []) if v.strip()]
            if not raw:
                continue
            try:
                if spec.name == "group":
                    values["group"] = [int(v) for item in raw for v in item.split(",") if v.strip()]
                elif spec.name == "no_group":
                    values["no_group"] = _yes_no(raw[-1])
                elif spec.name == "q":
                    values["q"] = raw[-1]
                else:
                    values[spec.name] = parsers.get(spec.name, _date)(raw[-1])
            except ValueError as exc:
                errors.add(f"{spec.name}: {exc}", pointer=spec.name)
        filters = cls(**values)
        low, high = filters.orders_min, filters.orders_max
        if low is not None and high is not None and low > high:
            errors.add(
                f"orders_min: the minimum ({low}) is more than the maximum ({high})", pointer="orders_min"
            )
        for prefix in ("birthday", "created", "active", "redeemed"):
            first, last = getattr(filters, f"{prefix}_from"), getattr(filters, f"{prefix}_to")
            if first is not None and last is not None and first > last:
                problem = f"{prefix}_from: the first day ({first}) is after the last ({last})"
                errors.add(problem, pointer=f"{prefix}_from")
        if (filters.birthday_window_from is None) != (filters.birthday_window_to is None):
            errors.add("a birthday window needs both a first and a last day", pointer="birthday_window_from")
        return filters

    def apply(self, queryset: QuerySet[CustomerProfile]) -> QuerySet[CustomerProfile]:
        queryset = search(queryset, self.q)
        queryset = in_groups(queryset, self.group, no_group=self.no_group)
        if self.tax_exempt is not None:
            queryset = queryset.filter(tax_exempt=self.tax_exempt)
        if self.accepts_marketing is not None:
            queryset = queryset.filter(accepts_marketing=self.accepts_marketing)
        queryset = orders_between(queryset, self.orders_min, self.orders_max)
        queryset = birthday_between(queryset, self.birthday_from, self.birthday_to)
        if self.birthday_window_from is not None and self.birthday_window_to is not None:
            queryset = birthday_window(queryset, self.birthday_window_from, self.birthday_window_to)
        queryset = instant_between(queryset, "created", self.created_from, self.created_to)
        queryset = instant_between(queryset, "last_activity", self.active_from, self.active_to)
        if self.redeemed_from or self.redeemed_to:
            queryset = redeemed_between(queryset, self.redeemed_from, self.redeemed_to)
        return queryset


def customers_filtered(environment: Environment, filters: CustomerFilters) -> QuerySet[CustomerProfile]:
    return filters.apply(CustomerProfile.objects.filter(environment=environment))


def groups_of(environment: Environment) -> QuerySet[CustomerGroup]:
    """The groups a customer of this environment can be in, by name."""
    return CustomerGroup.objects.filter(environment=environment).order_by("name", "pk")


def currencies_of(environment: Environment) -> list[str]:
    """The currencies of the environment's shops (applications), each once, in order.

    A customer's total sales add up the orders of every shop of the environment: the amount is in
    their currency when they share one (``core.money.shared_currency``); with several, it is a plain sum
    and pages say so.
    """
    return sorted(set(Application.objects.filter(environment=environment).values_list("currency", flat=True)))


def group_counts(queryset: QuerySet[CustomerProfile]) -> list[tuple[str, int]]:
    """How many of these customers are in which group now, biggest first; ``no group`` last. One query."""
    rows = list(
        queryset.order_by().values_list("group__name").annotate(n=Count("pk")).order_by("-n", "group__name")
    )
    counts = [(name, n) for name, n in rows if name is not None]
    counts += [("no group", n) for name, n in rows if name is None]
    return counts
