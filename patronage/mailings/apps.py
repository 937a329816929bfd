from django.apps import AppConfig


class MailingsConfig(AppConfig):
    name = "patronage.mailings"
    label = "mailings"
    verbose_name = "Mailings"
