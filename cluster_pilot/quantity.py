"""Resource quantities as Kubernetes writes them (``"250m"``, ``"0.5"``, ``"64Mi"``, ``"1G"``), as integers.

Shared by manifests and the inventory so a capacity and a request are read by the same rules.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^\s*([+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]{0,2})\s*$")


def parse_quantity(value: object) -> Decimal:
    """The amount a quantity stands for; ``ValueError`` with a readable reason when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity (expected a number or a string such as \"500m\" or \"64Mi\")")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return Decimal(str(value))
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a quantity")
    m = _QUANTITY.match(value)
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"{value!r} is not a quantity (expected e.g. \"0.5\", \"500m\", \"1Gi\", \"1G\")")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{value!r} is not a quantity") from exc


def cpu_millis(value: object) -> int:
    """CPU in millicores: ``"2"`` and ``"2000m"`` are both 2000."""
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: object) -> int:
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


def format_bytes(n: int) -> str:
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
