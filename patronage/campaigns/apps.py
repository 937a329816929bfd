from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "patronage.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from patronage.customer_sessions.engine import SESSION_ENGINES

        from . import builtins  # noqa: F401  (registers the engine's own conditions and effects)
        from .lifecycle import CampaignEngine

        # customer_sessions never imports this app: the engine reaches it through this hook list.
        if not any(isinstance(engine, CampaignEngine) for engine in SESSION_ENGINES):
            SESSION_ENGINES.append(CampaignEngine())
