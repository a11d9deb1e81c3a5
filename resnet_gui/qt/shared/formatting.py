"""Numbers as the window shows them: exact counts with thousands separators, and short
forms (1.82 G) where space is tight."""

from __future__ import annotations


def count(value: int) -> str:
    return f"{value:,}"


def short(value: float, unit: str = "") -> str:
    """1234 -> '1.23 k', 11178378 -> '11.2 M', 1.8e9 -> '1.82 G'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            scaled = value / factor
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            return f"{scaled:.{digits}f} {prefix}{unit}"
    return f"{value:g} {unit}".rstrip()


def size_in_bytes(value: int) -> str:
    for factor, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= factor:
            return f"{value / factor:.1f} {name}"
    return f"{value} B"


def shape(dims: tuple[int, ...]) -> str:
    return " × ".join(str(d) for d in dims) if dims else "–"


def receptive_field(size: tuple[int, int] | None, jump: tuple[int, int] | None) -> str:
    """(35, 35), (4, 4) -> '35 px, jump 4'; height and width apart where they differ."""
    if size is None or jump is None:
        return "?"

    def pair(values: tuple[int, int]) -> str:
        return str(values[0]) if values[0] == values[1] else f"{values[0]}×{values[1]}"

    return f"{pair(size)} px, jump {pair(jump)}"


def signed(value: int) -> str:
    return f"{value:+,}" if value else "±0"
