"""The back office's campaign pages, one module each (Django's admin autodiscovery imports this one)."""

from . import admin_campaigns, admin_customers, admin_webhooks  # noqa: F401  (each registers its models)
