"""Run ids are UUIDv7 and sort by start time; child ids stay derived from the parent."""

from __future__ import annotations

import uuid

from durable._foundation.run_ids import child_id_of, new_run_id


def test_a_run_id_is_a_uuid7_carrying_its_millisecond() -> None:
    at = 1_795_000_000.123
    run_id = new_run_id(at=at)
    assert run_id.version == 7
    assert run_id.variant == uuid.RFC_4122
    assert run_id.int >> 80 == int(at * 1000)
    assert new_run_id(at=at) != run_id  # 74 random bits


def test_ids_sort_by_start_time_bytewise_like_postgres() -> None:
    ids = [new_run_id(at=1_795_000_000 + n * 0.001) for n in range(50)]
    assert sorted(ids, key=lambda u: u.bytes) == ids


def test_a_child_of_a_uuid7_parent_is_deterministic_and_sorts_with_its_parent() -> None:
    parent = new_run_id(at=1_795_000_000.5)
    child = child_id_of(parent, "child:ship#0")
    assert child == child_id_of(parent, "child:ship#0")
    assert child != child_id_of(parent, "child:ship#1")
    assert child.version == 7
    assert child.variant == uuid.RFC_4122
    assert child.int >> 80 == parent.int >> 80  # the parent's millisecond: its partition


def test_children_of_other_parents_keep_the_ids_they_always_had() -> None:
    parent = uuid.UUID("3f0c2a9e-8d1b-4c6e-9f00-112233445566")
    assert child_id_of(parent, "child:ship#0") == uuid.uuid5(parent, "child:ship#0")
