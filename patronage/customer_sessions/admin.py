from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import TabularInline

from patronage.customers.admin import PROFILE_TABS
from patronage.workspace.admin import ReadOnlyAdmin

from .models import ORDER_STATES, CartItem, CustomerSession


class CartItemInline(TabularInline):
    model = CartItem
    fields = ["position", "sku", "name", "quantity", "returned_quantity", "price", "category"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class OrdersTab(TabularInline):
    """The "Orders" tab of a customer: closed sessions, newest first, read-only."""

    model = CustomerSession
    fk_name = "profile"
    verbose_name = "order"
    verbose_name_plural = "orders"
    fields = ["order", "application", "closed_at", "items_summary", "order_total", "state"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    hide_title = True  # the first column names and links the order
    tab = True
    per_page = 20

    def get_queryset(self, request: HttpRequest) -> QuerySet[CustomerSession]:
        return (
            super()
            .get_queryset(request)
            .filter(state__in=ORDER_STATES)
            .select_related("application")
            .prefetch_related("items")
            .order_by("-closed_at", "-id")
        )

    @admin.display(description="Order")
    def order(self, session: CustomerSession) -> str:
        url = reverse("admin:customer_sessions_customersession_change", args=[session.pk])
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url, session.integration_id)

    @admin.display(description="Total")
    def order_total(self, session: CustomerSession) -> str:
        return f"{session.total:.2f}"

    @admin.display(description="Items")
    def items_summary(self, session: CustomerSession) -> str:
        return ", ".join(f"{item.quantity} x {item.name or item.sku}" for item in session.items.all())

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


PROFILE_TABS.append(OrdersTab)


@admin.register(CustomerSession)
class CustomerSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "integration_id",
        "application",
        "profile_integration_id",
        "state",
        "total",
        "created",
        "closed_at",
    ]
    list_filter = ["state", "application"]
    search_fields = ["integration_id", "profile_integration_id"]
    list_select_related = ["application__environment"]
    show_full_result_count = False
    inlines = [CartItemInline]
