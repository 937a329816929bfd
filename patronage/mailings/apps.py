from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "patronage.mailings"
    label = "mailings"
    verbose_name = "Mailings"

    def ready(self) -> None:
        from patronage.promocodes.selectors import MAILING_NAMES

        from .selectors import mailing_names

        MAILING_NAMES.append(mailing_names)
