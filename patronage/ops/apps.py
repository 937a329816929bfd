from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "patronage.ops"
    label = "ops"
    verbose_name = "Operations"
