"""The optional period of a condition about events: since / until (calendar days) or the last N days."""

from __future__ import annotations

from ..registry import Param, Value

PERIOD = (
    Param("since", "Since", Value.DATE, help="from this day on"),
    Param("until", "Until", Value.DATE, help="up to and including this day"),
    Param("last_days", "In the last N days", Value.DAYS),
)
