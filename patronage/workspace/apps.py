from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "patronage.workspace"
    label = "workspace"
    verbose_name = "Workspace"
