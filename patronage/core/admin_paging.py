"""A page size the user picks on an admin list (``?per_page=25``), remembered in the URL with the filters.

A ChangeList mixin rather than a ModelAdmin setting: Django's admin reads ``list_per_page`` once per
class, and ``per_page`` must not reach the filters (the admin would refuse it as an unknown lookup).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

PER_PAGE_VAR = "per_page"
PER_PAGE_CHOICES = (10, 25, 50, 100)
DEFAULT_PER_PAGE = 50


def selected_per_page(
    request: HttpRequest, *, choices: tuple[int, ...] = PER_PAGE_CHOICES, default: int = DEFAULT_PER_PAGE
) -> int:
    raw = request.GET.get(PER_PAGE_VAR, "")
    return int(raw) if raw.isdigit() and int(raw) in choices else default


class PerPageMixin:
    """Mix into an unfold/Django ``ChangeList`` before it; the list template draws ``per_page_options``."""

    per_page_choices: tuple[int, ...] = PER_PAGE_CHOICES
    default_per_page: int = DEFAULT_PER_PAGE

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.per_page = selected_per_page(
            request, choices=self.per_page_choices, default=self.default_per_page
        )
        super().__init__(request, *args, **kwargs)  # type: ignore[call-arg]

    def get_filters_params(self, params: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
        lookup: dict[str, list[str]] = super().get_filters_params(params)  # type: ignore[misc]
        lookup.pop(PER_PAGE_VAR, None)
        return lookup

    def get_results(self, request: HttpRequest) -> None:
        self.list_per_page = self.per_page
        super().get_results(request)  # type: ignore[misc]

    def per_page_options(self) -> list[dict[str, Any]]:
        return [{"value": n, "selected": n == self.per_page} for n in self.per_page_choices]

    def kept_params(self) -> list[tuple[str, str]]:
        """Everything in the URL but the page size and page: the page-size form sends them back."""
        params: dict[str, list[str]] = self.filter_params  # type: ignore[attr-defined]
        return [(k, v) for k, values in params.items() if k != PER_PAGE_VAR for v in values]
