from __future__ import annotations

from typing import Any

from .services import environments_ensure


class EnvironmentChoiceMixin:
    """For forms that offer the environments as choices: the choices are never empty.

    A migration creates both environments, but a database flush (tests, a restore) drops them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        environments_ensure()
        super().__init__(*args, **kwargs)
