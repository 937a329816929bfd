from decimal import Decimal

from django.contrib import admin
from unfold.admin import ModelAdmin

from patronage.workspace.admin import ReadOnlyAdmin

from .models import CustomerProfile


@admin.register(CustomerProfile)
class CustomerProfileAdmin(ReadOnlyAdmin, ModelAdmin):
    """Read-only for now: profiles are written through the Integration API."""

    list_display = [
        "integration_id",
        "name",
        "email",
        "phone",
        "environment",
        "closed_sessions",
        "total_sales",
        "created",
        "last_activity",
    ]
    list_filter = ["environment", "accepts_marketing", "tax_exempt"]
    search_fields = ["integration_id", "name", "email", "phone"]
    list_select_related = ["environment"]
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="Total sales", ordering="total_sales")
    def sales(self, profile: CustomerProfile) -> Decimal:
        return profile.total_sales.quantize(Decimal("0.01"))
