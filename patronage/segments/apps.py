from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "patronage.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from .conditions import register_builtin
        from .exports import register as register_export

        register_builtin()
        register_export()
