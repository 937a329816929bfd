from django.apps import AppConfig


class CustomerSessionsConfig(AppConfig):
    name = "patronage.customer_sessions"
    label = "customer_sessions"
    verbose_name = "Customer sessions"

    def ready(self) -> None:
        from patronage.customers.services import BEFORE_PROFILES_DELETE

        from .services import sessions_anonymize

        # Deleting customers (back office, bulk) must leave their orders behind, anonymized.
        if sessions_anonymize not in BEFORE_PROFILES_DELETE:
            BEFORE_PROFILES_DELETE.append(sessions_anonymize)
