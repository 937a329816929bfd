"""The app's background tasks (the worker finds them here); each lives beside the service it runs."""

from .webhooks import deliver_webhooks

__all__ = ["deliver_webhooks"]
