"""The queue choice (``choose_runs``) on its own: which due runs a managed queue's claim
takes, in order, within the room it has, the rate window and the per-key limit.

The claim reads the candidates and counts under the queue's lock and passes them here;
the concurrency across workers is ``tests/acceptance/test_queues.py``'s subject.
"""

from __future__ import annotations

from typing import Any

import pytest

from durable._worker.queue_choice import choose_runs


def _config(rate_limit: int | None = None, key_concurrency: int = 1) -> dict[str, Any]:
    return {"rate_limit": rate_limit, "key_concurrency": key_concurrency}


def _run(name: str, key: str | None = None, first_claim: bool = True) -> dict[str, Any]:
    return {"id": name, "concurrency_key": key, "first_claim": first_claim}


def _chosen(config: dict[str, Any], room: int, candidates: list[dict[str, Any]], *,
            recent: int = 0, running: dict[str, int] | None = None) -> list[str]:  # fmt: skip
    picked = choose_runs(config, {"recent": recent}, room, candidates, running or {})
    return [run["id"] for run in picked]


def test_without_limits_the_first_runs_up_to_the_room_are_taken_in_order() -> None:
    candidates = [_run(n) for n in "abcde"]
    assert _chosen(_config(), 3, candidates) == ["a", "b", "c"]
    assert _chosen(_config(), 10, candidates) == list("abcde")
    assert _chosen(_config(), 0, candidates) == []


def test_the_rate_window_counts_first_claims_already_made() -> None:
    candidates = [_run(n) for n in "abcd"]
    assert _chosen(_config(rate_limit=3), 10, candidates) == ["a", "b", "c"]
    assert _chosen(_config(rate_limit=3), 10, candidates, recent=2) == ["a"]
    assert _chosen(_config(rate_limit=3), 10, candidates, recent=3) == []
    assert _chosen(_config(rate_limit=3), 10, candidates, recent=5) == []


def test_a_run_claimed_again_is_not_a_start_and_passes_a_full_rate_window() -> None:
    candidates = [_run("new"), _run("resumed", first_claim=False), _run("new2")]
    assert _chosen(_config(rate_limit=1), 10, candidates, recent=1) == ["resumed"]


def test_runs_of_one_key_are_taken_up_to_the_key_limit_others_go_on() -> None:
    candidates = [_run("a1", "a"), _run("a2", "a"), _run("b1", "b"), _run("plain"), _run("a3", "a")]
    assert _chosen(_config(), 10, candidates) == ["a1", "b1", "plain"]
    assert _chosen(_config(key_concurrency=2), 10, candidates) == ["a1", "a2", "b1", "plain"]


def test_runs_already_running_count_against_their_key() -> None:
    candidates = [_run("a1", "a"), _run("b1", "b"), _run("b2", "b")]
    assert _chosen(_config(key_concurrency=2), 10, candidates, running={"a": 2, "b": 1}) == ["b1"]


def test_a_run_skipped_for_its_key_takes_no_rate_room() -> None:
    candidates = [_run("a1", "a"), _run("a2", "a"), _run("b1", "b")]
    assert _chosen(_config(rate_limit=2), 10, candidates) == ["a1", "b1"]


def test_the_room_bounds_the_choice_after_the_limits() -> None:
    candidates = [_run("a1", "a"), _run("a2", "a"), _run("b1", "b"), _run("c1", "c")]
    assert _chosen(_config(), 2, candidates) == ["a1", "b1"]


@pytest.mark.parametrize("running", [{}, {"a": 0}])
def test_the_running_counts_given_are_not_changed(running: dict[str, int]) -> None:
    before = dict(running)
    _chosen(_config(), 10, [_run("a1", "a")], running=running)
    assert running == before
