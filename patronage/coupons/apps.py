from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "patronage.coupons"
    label = "coupons"
    verbose_name = "Coupons and referrals"

    def ready(self) -> None:
        from . import (
            admin_customers,  # noqa: F401  (the customer page's Coupons, Referred customers and Sessions tabs)
            engine,  # noqa: F401  (registers couponValid, referralValid and the code effects)
        )
        from .imports import register as register_coupon_imports

        register_coupon_imports()  # the "coupons" kind of Import/Export
