from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "patronage.coupons"
    label = "coupons"
    verbose_name = "Coupons and referrals"

    def ready(self) -> None:
        from . import engine  # noqa: F401  (registers couponValid, referralValid and the code effects)
