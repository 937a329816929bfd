from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "patronage.offers"
    label = "offers"
    verbose_name = "Customer private offers"
