from django.apps import AppConfig


class IntegrationConfig(AppConfig):
    name = "patronage.integration"
    label = "integration"
    verbose_name = "Integration API"
