"""The conditions Patronage ships, one module per thing known about a customer.

Each module's ``register()`` adds its conditions and references to the registry; later features do the
same from their own apps.
"""

from __future__ import annotations


def register_builtin() -> None:
    from . import attributes, offers, orders, profile, promocodes

    for module in (profile, attributes, orders, promocodes, offers):
        module.register()
