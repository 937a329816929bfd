from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "patronage.customers"
    label = "customers"
    verbose_name = "Customers"
