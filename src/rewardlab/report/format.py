"""Cell formatting shared by every report, so an estimate reads the same in each: ``0.612 [0.585, 0.642]``.

Estimates are JSON dicts (``value``, ``ci_low``, ``ci_high``, ``n``, as `Estimate.as_dict` writes them).
A missing estimate prints as "—", a NaN as "n/a" and an infinity as "∞", so a degenerate number never
passes for a real one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rewardlab.report.document import Table

MISSING = "—"


def number(x: Any, digits: int = 3) -> str:
    """A float to ``digits`` places, an int as is; None/NaN as "n/a", infinities as "∞" / "−∞"."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _as_float(x: Any) -> Any:
    return float(x) if isinstance(x, int) and not isinstance(x, bool) else x


def estimate(e: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``value [ci_low, ci_high]``; "—" when there is no estimate."""
    if not e:
        return MISSING
    value, low, high = (number(_as_float(e.get(k)), digits) for k in ("value", "ci_low", "ci_high"))
    return f"{value} [{low}, {high}]"


def significant(e: Mapping[str, Any]) -> bool:
    """A difference whose 95% CI excludes 0 (NaN bounds compare False, so they never count)."""
    return bool(e.get("ci_low", math.nan) > 0 or e.get("ci_high", math.nan) < 0)


def difference(e: Mapping[str, Any] | None, digits: int = 3) -> str:
    """An estimated difference, in bold when its CI excludes 0."""
    text = estimate(e, digits)
    return f"**{text}**" if e and significant(e) else text


def setting_rows(settings: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
    """A run's settings as ``[name, value]`` rows, the same in every format: nested settings flattened to
    ``outer.inner`` keys, lists as comma-separated values, None and empty lists as "—"."""
    rows = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += setting_rows(value, name + ".")
        elif isinstance(value, list | tuple):
            rows.append([name, ", ".join(str(v) for v in value) or MISSING])
        else:
            rows.append([name, MISSING if value is None else str(value)])
    return rows


def findings_table(findings: Iterable[Mapping[str, str]]) -> Table:
    """Verdicts on claims (``claim``, ``verdict``, ``evidence``), one row each."""
    return Table(["claim", "verdict", "evidence"], [[f["claim"], f["verdict"], f["evidence"]] for f in findings])
