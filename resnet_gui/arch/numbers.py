"""Numbers on their way to JSON, which has no NaN or infinity (standard library only)."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: float | None) -> float | None:
    """A missing or non-finite number is None (JSON ``null``); any other, a float."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_value(value: Any) -> Any:
    """A record's value for JSON: a float through :func:`finite_or_none`, anything else as is."""
    return finite_or_none(value) if isinstance(value, float) else value
