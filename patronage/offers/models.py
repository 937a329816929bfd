"""Customer private offers: offers shown in the customer panel to the customers whose emails are assigned
to them (or to every signed-in customer when public), the image gallery they draw their pictures from,
and what customers did with them (favourites, claims, redemptions)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application, Environment


class OfferType(models.TextChoices):
    ONLINE_AND_RETAIL = "online_retail", "Use online & in retail"
    ONLINE = "online", "Only online"
    RETAIL = "retail", "Only in retail"


class LinkType(models.TextChoices):
    """Where the mobile app takes the customer; ``object_id`` names the product, tag, page or view."""

    PRODUCT = "product", "Product"
    CATEGORY = "category", "Category (tag)"
    PROMOTION_PAGE = "promotion_page", "Promotion page"
    OPENSET_PAGE = "openset_page", "Openset page"
    CUSTOM_VIEW = "custom_view", "Custom view"


class GalleryImage(models.Model):
    """An uploaded picture (checked with Pillow), stored through Django's storage API."""

    file = models.ImageField(upload_to="gallery/%Y/%m/", width_field="width", height_field="height")
    title = models.CharField(max_length=200, blank=True)
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    size = models.PositiveIntegerField(default=0, editable=False, help_text="bytes")
    uploaded_at = models.DateTimeField(default=clock.now, editable=False)
    # A copy at most PATRONAGE_IMAGE_DISPLAY_WIDTH wide, made when the original is wider: what the customer
    # panel and the mobile app get. Empty when the original is small enough to be served as it is.
    display = models.ImageField(upload_to="gallery/display/%Y/%m/", blank=True)
    display_width = models.PositiveIntegerField(default=0, editable=False)
    display_height = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.title or self.file.name.rsplit("/", 1)[-1]

    @property
    def panel_url(self) -> str:
        """The picture customers are served: the resized copy if there is one, else the original."""
        return str((self.display or self.file).url)

    @property
    def panel_width(self) -> int:
        return self.display_width if self.display else self.width

    @property
    def panel_height(self) -> int:
        return self.display_height if self.display else self.height


class Offer(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="offers")
    # Unique across the installation: assignment files name offers by it without saying the environment.
    system_name = models.CharField(
        max_length=100, unique=True, help_text="Not shown to customers; assignment imports use it as Offer ID"
    )
    name = models.CharField("visible name", max_length=200)
    description = models.TextField(blank=True)
    validity_text = models.CharField(max_length=200, blank=True, help_text="e.g. “Valid until 31 May”")
    link = models.URLField(max_length=500, help_text="Where the picture leads in the customer panel")
    picture = models.ForeignKey(GalleryImage, on_delete=models.PROTECT, related_name="+")
    offer_type = models.CharField("type", max_length=20, choices=OfferType.choices)
    applications = models.ManyToManyField(Application, related_name="offers", verbose_name="shops")
    starts_at = models.DateTimeField("start date")
    ends_at = models.DateTimeField("end date")
    sort_order = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # Fixed at creation: a public offer takes no email assignments.
    is_public = models.BooleanField(default=False)
    link_type = models.CharField(max_length=20, choices=LinkType.choices)
    object_id = models.CharField("object ID", max_length=200)
    image_small = models.ForeignKey(GalleryImage, on_delete=models.PROTECT, related_name="+")
    image_medium = models.ForeignKey(GalleryImage, on_delete=models.PROTECT, related_name="+")
    image_big = models.ForeignKey(GalleryImage, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(default=clock.now, editable=False)
    updated = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        verbose_name = "customer private offer"
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="offer_ends_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "is_active", "starts_at", "ends_at"], name="offer_live")
        ]

    def __str__(self) -> str:
        return self.system_name


class OfferAssignment(models.Model):
    """An email an offer is meant for; it applies to whichever customer has (or later registers) it."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="assignments")
    email = models.CharField(max_length=254, help_text="stored lowercased")
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        # Email first: the same index answers "My offers" (offers of one email), and imports maintain one
        # index fewer than with a second (email, offer) index.
        constraints = [
            models.UniqueConstraint(fields=["email", "offer"], name="offer_assignment_email_offer")
        ]

    def __str__(self) -> str:
        return f"{self.email} -> {self.offer_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class _Tracked(models.Model):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="%(class)ss")
    profile = models.ForeignKey(CustomerProfile, on_delete=models.CASCADE, related_name="offer_%(class)ss")
    created = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} of offer {self.offer_id} by customer {self.profile_id}"


class OfferFavourite(_Tracked):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "profile"], name="offer_favourite_unique")]


class OfferClaim(_Tracked):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "profile"], name="offer_claim_unique")]


class RedemptionSource(models.TextChoices):
    BACK_OFFICE = "back_office", "Back office"
    API = "api", "Management API"


class OfferRedemption(_Tracked):
    """A customer used the offer (recorded by staff or by the shop); at most once per customer and offer."""

    redeemed_at = models.DateTimeField(default=clock.now)
    source = models.CharField(max_length=20, choices=RedemptionSource.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "profile"], name="offer_redemption_unique")]
        indexes = [models.Index(fields=["redeemed_at"], name="offer_redemption_at")]
