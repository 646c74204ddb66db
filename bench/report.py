"""Figures, their statistics, the printed table and the JSON report.

A figure is one measure of one system in one scenario: its raw samples (seconds, or bytes
for memory), how many items one sample covers (``per``: 1,000 for "1,000 workflows in one
batch"), and a note. The table shows min / median / p95 of the samples, the rate at the
median when a sample covers many items, the speed-up against DBOS (DBOS median / this
median, so 5.0x means five times faster) and the cost per item in raw commits (this
median per item / the median of one single-row INSERT commit).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Figure", "render_table", "write_json"]

Kind = Literal["time", "bytes", "count"]


@dataclass
class Figure:
    """One measure of one system: raw samples plus how to read them."""

    scenario: str
    measure: str
    system: str
    samples: list[float] = field(default_factory=list)
    kind: Kind = "time"
    per: int = 1
    """Items covered by one sample: the rate is per / median."""
    note: str = ""
    error: str | None = None
    """Why the figure is n/a (the scenario could not run for this system)."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    def stat(self, which: Literal["min", "median", "p95"]) -> float:
        values = sorted(self.samples)
        if which == "min":
            return values[0]
        if which == "median":
            return statistics.median(values)
        rank = max(1, math.ceil(0.95 * len(values)))  # nearest-rank percentile
        return values[rank - 1]


def _dbos_peer(fig: Figure, figures: Sequence[Figure]) -> Figure | None:
    for other in figures:
        if (
            other.system == "dbos"
            and other.scenario == fig.scenario
            and other.measure == fig.measure
            and other.ok
        ):
            return other
    return None


def vs_dbos(fig: Figure, figures: Sequence[Figure]) -> float | None:
    """DBOS median / this median (higher is better for this system), for times of systems
    other than DBOS; None where it does not apply."""
    peer = _dbos_peer(fig, figures)
    if peer is None or fig.system.startswith("dbos") or fig.kind != "time" or not fig.ok:
        return None
    mine = fig.stat("median")
    if mine <= 0:
        return None
    return peer.stat("median") / mine


def x_commit(fig: Figure, commit: float | None) -> float | None:
    """This figure's median per item, in units of one raw commit."""
    if commit is None or commit <= 0 or fig.kind != "time" or not fig.ok:
        return None
    return fig.stat("median") / fig.per / commit


def _fmt_value(value: float, kind: Kind) -> str:
    if kind == "bytes":
        return f"{value / 1024:,.1f} KiB"
    if kind == "count":
        return f"{value:,.2f}"
    ms = value * 1000
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms:.3f} ms"


def _fmt_rate(fig: Figure) -> str:
    if fig.per <= 1 or fig.kind != "time" or not fig.ok:
        return ""
    median = fig.stat("median")
    return f"{fig.per / median:,.0f}/s" if median > 0 else ""


def _row(fig: Figure, figures: Sequence[Figure], commit: float | None) -> list[str]:
    if not fig.ok:
        reason = fig.error or "no samples"
        return [fig.scenario, fig.measure, fig.system, "n/a", "", "", "", "", "", reason]
    ratio = vs_dbos(fig, figures)
    cost = x_commit(fig, commit)
    return [
        fig.scenario,
        fig.measure,
        fig.system,
        _fmt_value(fig.stat("min"), fig.kind),
        _fmt_value(fig.stat("median"), fig.kind),
        _fmt_value(fig.stat("p95"), fig.kind),
        _fmt_rate(fig),
        "" if ratio is None else f"{ratio:.2f}x",
        "" if cost is None else f"{cost:.1f}",
        fig.note,
    ]


HEADER = [
    "scenario",
    "measure",
    "system",
    "min",
    "median",
    "p95",
    "rate",
    "vs DBOS",
    "commits",
    "note",
]


def render_table(figures: Sequence[Figure], commit: float | None) -> str:
    """A plain-text table; 'vs DBOS' is a speed-up (DBOS median / this median)."""
    rows = [HEADER] + [_row(f, figures, commit) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _as_json(fig: Figure, figures: Sequence[Figure], commit: float | None) -> dict[str, Any]:
    out = asdict(fig)
    out.pop("samples")
    out["n"] = len(fig.samples)
    if fig.ok:
        out.update({k: fig.stat(k) for k in ("min", "median", "p95")})
        out["rate_per_s"] = fig.per / out["median"] if fig.per > 1 and out["median"] > 0 else None
    out["vs_dbos"] = vs_dbos(fig, figures)
    out["x_commit"] = x_commit(fig, commit)
    return out


def write_json(
    path: Path, figures: Sequence[Figure], commit: float | None, meta: dict[str, Any]
) -> None:
    """Write the run's metadata and every figure (stats in seconds or bytes) to ``path``."""
    data = {
        "meta": meta,
        "commit_seconds": commit,
        "figures": [_as_json(f, figures, commit) for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
