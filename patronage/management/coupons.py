"""Management API for coupons at Talon.One's paths (in progress, helper F)."""

from ninja import Router

from .access import management_auth

router = Router(auth=management_auth, tags=["Coupons"])
