"""Which failed record a retry runs again (``failed_keys``), from the records alone.

A retry re-executes the record that failed the run and keeps every other one, so a
failure the workflow caught stays caught and the retried run takes the same path.
"""

from __future__ import annotations

import json
from typing import Any

from durable._foundation.codec import encode_error
from durable._workflow.run_retries import failed_keys
from durable.errors import ErrorInfo, StepFailed


def _error(exc: BaseException) -> str:
    return json.dumps(encode_error(exc))


def _record(seq: int, key: str, status: str = "completed", error: str | None = None) -> Any:
    return {"seq": seq, "cursor_key": key, "status": status, "error": error, "kind": "step"}


def test_the_record_with_the_runs_error_is_the_one_retried() -> None:
    boom = _error(ValueError("boom"))
    steps = [
        _record(0, "step:a#0"),
        _record(1, "step:b#0", "failed", _error(KeyError("caught by the workflow"))),
        _record(2, "step:c#0", "failed", boom),
    ]
    assert failed_keys(steps, boom) == ["step:c#0"]


def test_a_caught_failure_before_the_failing_one_stays() -> None:
    boom = _error(ValueError("boom"))
    steps = [
        _record(0, "step:b#0", "failed", _error(ValueError("other"))),
        _record(1, "step:a#0"),
        _record(2, "step:b#1", "failed", boom),
    ]
    assert failed_keys(steps, boom) == ["step:b#1"]


def test_the_latest_of_two_records_with_the_same_error_is_retried() -> None:
    boom = _error(ValueError("boom"))
    steps = [_record(0, "step:a#0", "failed", boom), _record(1, "step:a#1", "failed", boom)]
    assert failed_keys(steps, boom) == ["step:a#1"]


def test_a_step_failed_error_names_its_record_by_key() -> None:
    info = ErrorInfo(type="gone.Module.Error", message="lost type", code=None, traceback=None)
    run_error = _error(StepFailed(info, cursor_key="step:b#0"))
    steps = [
        _record(0, "step:a#0", "failed", _error(ValueError("x"))),
        _record(1, "step:b#0", "failed", _error(RuntimeError("something else"))),
        _record(2, "step:c#0"),
    ]
    assert failed_keys(steps, run_error) == ["step:b#0"]


def test_without_a_match_the_last_failed_record_after_all_others_is_retried() -> None:
    steps = [_record(0, "step:a#0"), _record(1, "step:b#0", "failed", _error(OSError("x")))]
    assert failed_keys(steps, _error(ValueError("the run failed in its own code"))) == ["step:b#0"]
    assert failed_keys(steps, None) == ["step:b#0"]


def test_a_failed_record_followed_by_a_completed_one_was_caught() -> None:
    steps = [_record(0, "step:b#0", "failed", _error(OSError("x"))), _record(1, "step:a#0")]
    assert failed_keys(steps, _error(ValueError("raised by the workflow itself"))) == []


def test_no_failed_record_means_nothing_to_run_again() -> None:
    assert failed_keys([_record(0, "step:a#0")], _error(ValueError("x"))) == []
    assert failed_keys([], None) == []


def test_the_order_is_by_sequence_not_by_list_position() -> None:
    boom = _error(ValueError("boom"))
    steps = [_record(5, "step:late#0", "failed", boom), _record(1, "step:early#0", "failed", boom)]
    assert failed_keys(steps, boom) == ["step:late#0"]
