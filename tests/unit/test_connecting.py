"""URLs naming several servers (``durable._store.connecting``, ``durable._foundation.dsn``):
their hosts in order, a database swapped without losing them, and passwords hidden."""

from __future__ import annotations

import pytest

from durable._foundation.dsn import dsn_for_database, redact, scrub
from durable._store.connecting import hosts_of

MULTI = "postgresql://app:s3cretpw@db1:5432,db2:5433/app?target_session_attrs=read-write"
IN_QUERY = "postgresql://app@/app?host=db1,db2&port=5432,5433&password=s3cretpw"


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        (MULTI, ["db1:5432", "db2:5433"]),
        (IN_QUERY, ["db1", "db2"]),
        ("postgresql://app@db1/app", ["db1"]),
        ("postgresql:///app?host=/var/run/postgresql", ["/var/run/postgresql"]),
        ("postgresql:///app", []),
    ],
)
def test_hosts_are_listed_in_the_order_they_are_tried(url: str, hosts: list[str]) -> None:
    assert hosts_of(url) == hosts


def test_another_database_keeps_every_host_and_option() -> None:
    assert dsn_for_database(MULTI, "other") == (
        "postgresql://app:s3cretpw@db1:5432,db2:5433/other?target_session_attrs=read-write"
    )
    assert dsn_for_database(IN_QUERY, "other") == (
        "postgresql://app@/other?host=db1,db2&port=5432,5433&password=s3cretpw"
    )


@pytest.mark.parametrize("url", [MULTI, IN_QUERY])
def test_a_multi_host_url_is_printed_without_its_password(url: str) -> None:
    masked = redact(url)
    assert "s3cretpw" not in masked
    assert "db1" in masked
    assert "5433" in masked
    said = scrub(f"could not reach {url}: s3cretpw refused", url)
    assert "s3cretpw" not in said
