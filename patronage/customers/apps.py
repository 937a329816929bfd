from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "patronage.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from patronage.dataio.registry import register_exporter, register_importer

        from .exports import EXPORTER
        from .imports import IMPORTER

        register_importer(IMPORTER)
        register_exporter(EXPORTER)
