"""Replaying hand-written histories: the format's checks and the replayer's judgement,
with no database (the acceptance tier replays histories exported from real runs)."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest

import durable
from durable import NonDeterminismError, UnknownWorkflow, step, workflow
from durable._workflow.children import child_run_id
from durable.testing import History, HistoryRecord, InvalidHistory, Replayer

pytestmark = pytest.mark.anyio
RAN: list[str] = []


@step(name="unit.replay.add")
async def add(a: int, b: int) -> int:
    RAN.append("add")
    return a + b


@workflow(name="unit.replay.sum")
async def total(n: int) -> int:
    first, second = await asyncio.gather(add(n, 1), add(n, 2))
    if durable.patched("double"):
        return 2 * (first + second)
    return first + second


@workflow(name="unit.replay.tail")
async def tail(n: int) -> int:
    value = await add(n, 1)
    await add(value, 1)
    return value


@workflow(name="unit.replay.fan")
async def fan(n: int) -> int:
    values = await asyncio.gather(*(add(n, i) for i in range(3)))
    return sum(values)


@workflow(name="unit.replay.leaf")
async def leaf(n: int) -> int:
    return n * 10


@workflow(name="unit.replay.parent")
async def parent(n: int) -> list[str]:
    waited = await leaf(n)
    started = await leaf.start(n + 1)
    return [str(waited), str(started.run_id)]


REPLAYER = Replayer(workflows=[total, tail, parent, fan])


def record(key: str, seq: int, output: Any, status: str = "completed") -> HistoryRecord:
    kind, _, rest = key.partition(":")
    name = rest.rpartition("#")[0] if rest else ""
    return HistoryRecord(key=key, seq=seq, kind=kind.partition("#")[0], name=name,
                         status=status, output=output)  # fmt: skip


def history(workflow: str, n: int, records: list[HistoryRecord], **outcome: Any) -> History:
    return History(run_id=uuid4(), workflow=workflow, version=1,
                   input={"args": [n], "kwargs": {}}, records=tuple(records),
                   status=outcome.pop("status", "completed"), **outcome)  # fmt: skip


GATHERED = [record("step:unit.replay.add#0", 0, 4), record("step:unit.replay.add#1", 1, 5)]


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_gathered_steps_replay_in_call_order() -> None:
    report = await REPLAYER.replay(history("unit.replay.sum", 3, GATHERED, output=9))
    assert report.ok, report.describe()
    assert (report.outcome, report.replayed, report.patches) == ("same", 2, {"double": False})
    assert RAN == []


async def test_a_patch_past_the_end_of_an_in_flight_history_stops_the_replay() -> None:
    report = await REPLAYER.replay(history("unit.replay.sum", 3, GATHERED, status="running"))
    assert report.ok, report.describe()
    assert (report.outcome, report.stopped_at) == ("incomplete", "patch:double#0")
    assert report.verdict == "ok (in flight)"


async def test_no_step_body_runs_past_the_end_of_the_history() -> None:
    records = [record("step:unit.replay.add#0", 0, 4)]
    report = await REPLAYER.replay(history("unit.replay.tail", 3, records, status="running"))
    assert report.ok
    assert report.stopped_at == "step:unit.replay.add#1"
    assert RAN == []


async def test_a_completed_run_that_the_code_would_extend_is_a_different_outcome() -> None:
    records = [record("step:unit.replay.add#0", 0, 4)]
    report = await REPLAYER.replay(history("unit.replay.tail", 3, records, output=4))
    assert not report.ok
    assert report.outcome == "different"
    assert "step:unit.replay.add#1" in report.detail
    assert RAN == []


async def test_a_record_of_another_kind_at_a_position_is_nondeterminism() -> None:
    records = [record("step:unit.replay.add#0", 0, 4), record("sleep#0", 1, 0.0)]
    report = await REPLAYER.replay(history("unit.replay.tail", 3, records, status="sleeping"))
    assert isinstance(report.error, NonDeterminismError)
    assert (report.error.cursor_key, report.error.new) == ("sleep#0", "step:unit.replay.add")


async def test_an_unknown_workflow_or_a_refused_input_is_not_ok() -> None:
    unknown = await REPLAYER.replay(history("unit.replay.gone", 1, [], output=1))
    assert not unknown.ok
    assert isinstance(unknown.error, UnknownWorkflow)
    refused = history("unit.replay.tail", 1, [], output=1)
    refused = History.from_dict({**refused.to_dict(), "input": {"args": ["x"], "kwargs": {}}})
    report = await REPLAYER.replay(refused)
    assert not report.ok
    assert "does not fit the code" in report.detail


def test_replay_many_reads_a_directory_in_order(tmp_path: Path) -> None:
    for name in ("b", "a"):
        history("unit.replay.sum", 3, GATHERED, output=9).save(tmp_path / f"{name}.json")
    (tmp_path / "notes.txt").write_text("not a history")
    reports = REPLAYER.replay_many(tmp_path)
    assert [Path(r.source or "").name for r in reports] == ["a.json", "b.json"]
    assert all(r.ok for r in reports)


async def test_replay_many_inside_an_event_loop_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"await replayer\.replay"):
        REPLAYER.replay_many([history("unit.replay.sum", 3, GATHERED, output=9)])


def test_a_history_survives_its_json() -> None:
    original = history("unit.replay.sum", 3, GATHERED, output=9, error=None, events={"k": 1})
    assert History.from_json(original.to_json()) == original
    assert anyio.run(REPLAYER.replay, original.to_dict()).ok


VALID = history("unit.replay.sum", 3, GATHERED, output=9).to_dict()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("[1, 2", "is not JSON"),
        ("[]", "not a durable run history"),
        (json.dumps({"format": "other"}), "not a durable run history"),
        (json.dumps({**VALID, "format_version": 99}), "newer than this durable reads"),
        (json.dumps({k: v for k, v in VALID.items() if k != "records"}), "missing field 'records'"),
        (json.dumps({**VALID, "records": [{"key": "x"}]}), "records[0]: missing field 'seq'"),
        (json.dumps({**VALID, "version": "1"}), "field 'version' has the wrong type"),
        (json.dumps({**VALID, "run_id": "nope"}), "not a run id"),
        (json.dumps({**VALID, "outcome": {"status": "lost"}}), "unknown run status"),
        (json.dumps({**VALID, "records": VALID["records"] * 2}), "share key"),
    ],
)
def test_a_bad_document_is_refused_with_what_is_wrong(document: str, words: str) -> None:
    with pytest.raises(InvalidHistory) as caught:
        History.from_json(document, source="run.json")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("run.json")
    assert words in str(caught.value)


async def test_child_runs_replay_from_their_records() -> None:
    run_id = uuid4()
    started = child_run_id(run_id, "start:unit.replay.leaf#0")  # derived, as in a worker
    records = [
        record("child:unit.replay.leaf#0", 0, 30),
        record("start:unit.replay.leaf#0", 1, str(started)),
    ]
    done = replace(history("unit.replay.parent", 3, records, output=["30", str(started)]),
                   run_id=run_id)  # fmt: skip
    report = await REPLAYER.replay(done)
    assert report.ok, report.describe()
    assert (report.outcome, report.replayed) == ("same", 2)
    waiting = history("unit.replay.parent", 3, [], status="waiting")
    report = await REPLAYER.replay(waiting)
    assert (report.ok, report.stopped_at) == (True, "child:unit.replay.leaf#0")


async def test_a_gather_cut_by_the_end_of_the_history_leaves_no_call_unawaited() -> None:
    records = [record("step:unit.replay.add#0", 0, 3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = await REPLAYER.replay(history("unit.replay.fan", 3, records, status="running"))
        gc.collect()
    assert report.ok, report.describe()
    assert report.stopped_at == "step:unit.replay.add#1"
    assert [str(w.message) for w in caught] == []
    assert RAN == []


# As in a worker, the error is raised where the call is made: gather's earlier calls are
# dropped un-awaited.
@pytest.mark.filterwarnings("ignore:coroutine 'tracked' was never awaited")
async def test_nondeterminism_past_a_gap_in_the_history_is_still_reported() -> None:
    records = [record("step:unit.replay.add#0", 0, 3), record("sleep#0", 2, 0.0)]
    report = await REPLAYER.replay(history("unit.replay.fan", 3, records, status="running"))
    assert isinstance(report.error, NonDeterminismError)
    assert report.error.cursor_key == "sleep#0"


def test_a_record_keeps_its_earlier_attempts_and_older_histories_have_none() -> None:
    original = history("unit.replay.sum", 3, GATHERED, output=9)
    earlier = ({"attempt": 1, "error": {"type": "builtins.OSError", "message": "down"},
                "started_at": None, "finished_at": "2026-01-01T00:00:00+00:00"},)  # fmt: skip
    first = replace(original.records[0], earlier_attempts=earlier)
    retried = replace(original, records=(first, *original.records[1:]))
    assert History.from_json(retried.to_json()) == retried
    assert "earlier_attempts" in retried.to_dict()["records"][0]
    # A version-1 history written before attempts were kept has no such field.
    assert "earlier_attempts" not in original.to_dict()["records"][0]
    assert History.from_dict(original.to_dict()).records[0].earlier_attempts == ()
