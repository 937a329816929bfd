"""Back office for private offers: the offer list and form, the image gallery, recording redemptions,
the "Why is this offer (not) shown?" tool and the Offers tab of a customer.

Every write is a service and every visibility answer is ``selectors.offers_explained``; this module only
parses, asks and renders.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action
from unfold.views import ChangeList

from patronage.core.admin_paging import PerPageMixin
from patronage.core.errors import DomainError
from patronage.customers.admin import PROFILE_TABS, DrawnProfileTab
from patronage.customers.forms import add_domain_errors
from patronage.customers.models import CustomerProfile

from .forms import GalleryImageForm, OfferForm, RedemptionForm, WhyShownForm
from .models import GalleryImage, Offer, OfferRedemption, RedemptionSource
from .selectors import email_has_customer, offer_activity, offers_explained
from .services import (
    gallery_image_upload,
    offer_assignments_delete,
    offer_create,
    offer_delete,
    offer_redeem,
    offer_update,
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- gallery ------------------------------------------------------------------------------------------------


@admin.register(GalleryImage)
class GalleryImageAdmin(ModelAdmin):
    form = GalleryImageForm
    list_display = ["thumbnail", "title", "dimensions", "file_size", "uploaded_at"]
    list_display_links = ["thumbnail", "title"]
    search_fields = ["title", "file"]
    list_per_page = 48

    @admin.display(description="Image")
    def thumbnail(self, image: GalleryImage) -> str:
        return format_html(
            '<img src="{}" alt="" loading="lazy" style="height:3.5rem;width:5rem;object-fit:contain" '
            'class="bg-base-50 rounded-default dark:bg-base-800">',
            image.panel_url,
        )

    @admin.display(description="Size")
    def dimensions(self, image: GalleryImage) -> str:
        if image.display:
            shown = f"{image.display_width} x {image.display_height}"
            return f"{image.width} x {image.height} (customers get {shown})"
        return f"{image.width} x {image.height}"

    @admin.display(description="File size", ordering="size")
    def file_size(self, image: GalleryImage) -> str:
        return f"{image.size / 1024:.0f} KiB" if image.size >= 1024 else f"{image.size} B"

    @admin.display(description="Preview")
    def preview(self, image: GalleryImage) -> str:
        return format_html(
            '<a href="{0}" target="_blank">'
            '<img src="{0}" alt="" style="max-height:16rem;max-width:100%"></a>',
            image.file.url,
        )

    def get_fields(self, request: HttpRequest, obj: GalleryImage | None = None) -> list[str]:
        if obj is None:
            return ["file", "title"]
        return ["preview", "title", "dimensions", "file_size", "uploaded_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: GalleryImage | None = None) -> list[str]:
        return [] if obj is None else ["preview", "title", "dimensions", "file_size", "uploaded_at"]

    def has_change_permission(self, request: HttpRequest, obj: GalleryImage | None = None) -> bool:
        # A stored picture is what offers already show: replace it by uploading another one.
        return False

    def save_model(self, request: HttpRequest, obj: GalleryImage, form: Any, change: bool) -> None:
        saved = gallery_image_upload(
            file=form.cleaned_data["file"], title=form.cleaned_data.get("title") or "", actor=request.user
        )
        obj.pk, obj.file, obj.uploaded_at = saved.pk, saved.file, saved.uploaded_at

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # gallery_image_upload wrote the history row.
        return None


# --- offers -------------------------------------------------------------------------------------------------


class OfferChangeList(PerPageMixin, ChangeList):
    pass


@admin.register(Offer)
class OfferAdmin(ModelAdmin):
    form = OfferForm
    list_display = [
        "id",
        "system_name",
        "name",
        "starts_at",
        "ends_at",
        "is_public",
        "assigned_emails",
    ]
    list_display_links = ["system_name"]
    list_filter = ["is_public", "environment"]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["system_name", "name"]
    search_help_text = "System name or name"
    list_select_related = ["environment"]
    list_before_template = "admin/offers/offer/list_toolbar.html"
    actions_row = ["edit_offer", "import_emails", "record_redemption", "delete_emails", "delete_offer"]
    actions_detail = ["record_redemption"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "environment",
                    "system_name",
                    "name",
                    "description",
                    "validity_text",
                    "offer_type",
                    "link",
                    "picture",
                    "applications",
                    "starts_at",
                    "ends_at",
                    "sort_order",
                    "is_active",
                    "is_public",
                ]
            },
        ),
        ("Mobile app", {"fields": ["link_type", "object_id", "image_small", "image_medium", "image_big"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Offer]:
        # One COUNT per page in the list's own query: sortable, and no query per row.
        return super().get_queryset(request).annotate(assigned_count=Count("assignments"))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return OfferChangeList

    @admin.display(description="Assigned emails", ordering="assigned_count")
    def assigned_emails(self, offer: Offer) -> int:
        count: int = offer.assigned_count  # type: ignore[attr-defined]
        return count

    def get_readonly_fields(self, request: HttpRequest, obj: Offer | None = None) -> list[str]:
        # Who an offer is for, and where, is decided when it is made.
        return ["environment", "is_public"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Offer, form: Any, change: bool) -> None:
        data = form.offer_input()
        if change:
            saved = offer_update(offer=obj, data=data, actor=request.user)
        else:
            saved = offer_create(environment=form.cleaned_data["environment"], data=data, actor=request.user)
        for model_field in Offer._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The service set the shops with the rest of the offer.
        pass

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # offer_create wrote it

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # offer_update wrote it

    def get_urls(self) -> list[URLPattern]:
        why = path(
            "why-shown/",
            self.admin_site.admin_view(self.why_shown_view),
            name="offers_offer_why_shown",
        )
        return [why, *super().get_urls()]

    def _page(self, request: HttpRequest, template: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/offers/offer/{template}",
            {**self.admin_site.each_context(request), "opts": self.model._meta, **context},
        )

    def _changelist_url(self) -> str:
        return reverse("admin:offers_offer_changelist")

    # Row actions (the "..." menu of each row).

    @action(description="Edit", icon="edit", url_path="edit")
    def edit_offer(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:offers_offer_change", object_id)

    @action(description="Import emails", icon="upload_file", url_path="import-emails", permissions=["change"])
    def import_emails(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        offer = get_object_or_404(Offer, pk=object_id)
        query = urlencode({"kind": "offer-assignments", "offer": offer.pk})
        return HttpResponseRedirect(f"{reverse('admin:dataio_importjob_add')}?{query}")

    @action(description="Record redemption", icon="redeem", url_path="redeem", permissions=["change"])
    def record_redemption(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        offer = get_object_or_404(Offer.objects.select_related("environment"), pk=object_id)
        form = RedemptionForm(request.POST or None, offer=offer)
        if request.method == "POST" and form.is_valid():
            profile: CustomerProfile = form.cleaned_data["customer"]
            try:
                offer_redeem(
                    offer=offer,
                    profile=profile,
                    source=RedemptionSource.BACK_OFFICE,
                    recorded_by=request.user,  # type: ignore[arg-type]
                    redeemed_at=form.cleaned_data.get("redeemed_at"),
                    note=form.cleaned_data.get("note") or "",
                )
            except DomainError as exc:
                add_domain_errors(form, exc)
            else:
                name = profile.name or profile.email or profile.integration_id
                self.message_user(request, f"Recorded: {name} redeemed {offer.name}.", messages.SUCCESS)
                return redirect(self._changelist_url())
        return self._page(
            request, "redeem.html", title=f"Record a redemption of {offer.name}", offer=offer, form=form
        )

    @action(
        description="Delete emails", icon="person_remove", url_path="delete-emails", permissions=["change"]
    )
    def delete_emails(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        offer = get_object_or_404(Offer, pk=object_id)
        if request.method == "POST":
            deleted = offer_assignments_delete(offer=offer, actor=request.user)
            self.message_user(
                request,
                f"Removed {_plural(deleted, 'assigned email')} from {offer.system_name}.",
                messages.SUCCESS,
            )
            return redirect(self._changelist_url())
        count = offer.assignments.count()
        return self._page(
            request, "delete_emails.html", title="Delete assigned emails?", offer=offer, count=count
        )

    @action(description="Delete", icon="delete", url_path="delete-offer", permissions=["delete"])
    def delete_offer(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return redirect("admin:offers_offer_delete", object_id)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Our confirmation: counts instead of Django's list of every related row (thousands of emails)."""
        offer = get_object_or_404(Offer, pk=object_id)
        if not self.has_delete_permission(request, offer):
            return redirect(self._changelist_url())
        if request.method == "POST":
            name = offer.system_name
            offer_delete(offer=offer, actor=request.user)
            self.message_user(request, f"Deleted offer {name}.", messages.SUCCESS)
            return redirect(self._changelist_url())
        # One COUNT each: joined in one query they would multiply into each other.
        counts = {
            "emails": offer.assignments.count(),
            "favourites": offer.offerfavourites.count(),  # type: ignore[attr-defined]
            "claims": offer.offerclaims.count(),  # type: ignore[attr-defined]
            "redemptions": offer.offerredemptions.count(),  # type: ignore[attr-defined]
        }
        return self._page(request, "delete_confirm.html", title="Delete offer?", offer=offer, counts=counts)

    def why_shown_view(self, request: HttpRequest) -> TemplateResponse:
        """Every offer of the shop's environment, shown or the exact reason it is hidden from this email."""
        if not self.has_view_permission(request):
            return self._page(request, "why_shown.html", title="Why is this offer (not) shown?", form=None)
        form = WhyShownForm(request.GET if "email" in request.GET else None)
        rows = None
        no_account = False
        if form.is_bound and form.is_valid():
            shop, email = form.cleaned_data["shop"], form.cleaned_data["email"]
            rows = offers_explained(application=shop, email=email)
            no_account = not email_has_customer(application=shop, email=email)
        return self._page(
            request,
            "why_shown.html",
            title="Why is this offer (not) shown?",
            form=form,
            rows=rows,
            no_account=no_account,
        )


# --- the customer's Offers tab ------------------------------------------------------------------------------


class CustomerOffersTab(DrawnProfileTab):
    """Read-only: offers the customer favourited, claimed or redeemed, with when."""

    model = OfferRedemption
    verbose_name = "offer"
    verbose_name_plural = "Offers"
    template = "admin/offers/customer_offers_tab.html"

    def tab_rows(self, profile: CustomerProfile) -> list[Any]:
        return offer_activity(profile)


PROFILE_TABS.append(CustomerOffersTab)
