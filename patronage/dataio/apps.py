from django.apps import AppConfig


class DataioConfig(AppConfig):
    name = "patronage.dataio"
    label = "dataio"
    verbose_name = "Import/Export"
