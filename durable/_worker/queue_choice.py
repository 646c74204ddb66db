"""Which due runs of a managed queue to claim: within its rate limit and per-key limits.

Pure: the store reads the queue's config, load, candidates and running keys under the
queue's row lock, and calls this to choose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["choose_runs"]


def choose_runs(
    config: Any, load: Any, room: int, candidates: Sequence[Any], running: dict[str, int]
) -> list[Any]:
    """Pick runs to claim, in order, within the queue's rate and per-key limits."""
    busy: Counter[str] = Counter(running)
    rate_room = None if config["rate_limit"] is None else config["rate_limit"] - load["recent"]
    chosen: list[Any] = []
    for candidate in candidates:
        if len(chosen) >= room:
            break
        key = candidate["concurrency_key"]
        if key is not None and busy[key] >= config["key_concurrency"]:
            continue
        if candidate["first_claim"] and rate_room is not None:
            if rate_room <= 0:
                continue
            rate_room -= 1
        if key is not None:
            busy[key] += 1
        chosen.append(candidate)
    return chosen
