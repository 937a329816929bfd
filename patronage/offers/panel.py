"""The offers app's place in the customer panel: "My offers" comes first in the panel's navigation.

Imported once from ``OffersConfig.ready`` so the entry exists whichever page is rendered first.
"""

from __future__ import annotations

from patronage.panel import nav

nav.register(nav.NavItem("panel:offers", "My offers", order=10))
