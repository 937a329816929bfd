from django.apps import AppConfig


class PromocodesConfig(AppConfig):
    name = "patronage.promocodes"
    label = "promocodes"
    verbose_name = "Promo codes"

    def ready(self) -> None:
        from .imports import register

        register()
