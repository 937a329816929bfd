from django.apps import AppConfig


class HomeConfig(AppConfig):
    """The back office's home page: the figures a marketer checks daily (``dashboard.py``)."""

    name = "patronage.home"
    label = "home"
    verbose_name = "Home"

    def ready(self) -> None:
        from django.contrib import admin

        # Unfold renders the index with this template after DASHBOARD_CALLBACK (settings.UNFOLD) filled it.
        admin.site.index_template = "home/dashboard.html"
