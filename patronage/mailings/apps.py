from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "patronage.mailings"
    label = "mailings"
    verbose_name = "Mailings"

    def ready(self) -> None:
        from patronage.customers.services import BEFORE_PROFILES_DELETE
        from patronage.promocodes.selectors import MAILING_NAMES

        from .selectors import mailing_names
        from .services import deliveries_forget_customers

        MAILING_NAMES.append(mailing_names)
        if deliveries_forget_customers not in BEFORE_PROFILES_DELETE:
            BEFORE_PROFILES_DELETE.append(deliveries_forget_customers)
