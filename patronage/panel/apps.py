from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "patronage.panel"
    label = "panel"
    verbose_name = "Customer panel"
