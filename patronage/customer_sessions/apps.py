from django.apps import AppConfig


class CustomerSessionsConfig(AppConfig):
    name = "patronage.customer_sessions"
    label = "customer_sessions"
    verbose_name = "Customer sessions"
