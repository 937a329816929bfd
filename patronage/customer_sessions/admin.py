from django.contrib import admin
from unfold.admin import TabularInline

from patronage.workspace.admin import ReadOnlyAdmin

from .models import CartItem, CustomerSession


class CartItemInline(TabularInline):
    model = CartItem
    fields = ["position", "sku", "name", "quantity", "returned_quantity", "price", "category"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


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
