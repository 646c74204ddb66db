"""Unit tests for RetryPolicy, the @step / @workflow decorators and the Registry."""

from __future__ import annotations

import math
from typing import Any

import pytest

from durable._runs.registry import Registry
from durable._workflow import decorators as _decorators
from durable._workflow.decorators import RetryPolicy, Step, Workflow, step, workflow

# --- RetryPolicy -----------------------------------------------------------------------

JITTERS = [0.0, 0.25, 0.5, 0.999999]


def _expected_base(policy: RetryPolicy, attempt: int) -> float:
    return min(policy.max_interval, policy.initial_interval * policy.backoff ** (attempt - 1))


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(retries=10),
        RetryPolicy(retries=10, backoff=1.0, initial_interval=2.0, max_interval=2.0),
        RetryPolicy(retries=10, backoff=3.0, initial_interval=0.5, max_interval=20.0),
        RetryPolicy(retries=10, backoff=2.0, initial_interval=0.0, max_interval=10.0),
    ],
)
@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 10])
def test_delay_between_half_and_all_of_the_interval(policy: RetryPolicy, attempt: int) -> None:
    base = _expected_base(policy, attempt)
    for jitter in JITTERS:
        delay = policy.delay(attempt, jitter)
        assert base / 2 <= delay <= base
    assert policy.delay(attempt, 0.0) == pytest.approx(base / 2)
    assert policy.delay(attempt, 0.999999) == pytest.approx(base, rel=1e-5)


def test_delay_grows_exponentially_then_caps() -> None:
    policy = RetryPolicy(retries=20, backoff=2.0, initial_interval=1.0, max_interval=60.0)
    tops = [policy.delay(n, 0.999999) for n in range(1, 10)]
    assert tops[:6] == pytest.approx([1, 2, 4, 8, 16, 32], rel=1e-5)
    assert tops[6:] == pytest.approx([60, 60, 60], rel=1e-5)
    assert tops == sorted(tops)


def test_delay_of_a_late_attempt_is_capped_not_an_overflow() -> None:
    policy = RetryPolicy(retries=100_000, backoff=2.0, initial_interval=1.0, max_interval=30.0)
    for attempt in (1_100, 5_000, 100_000):
        delay = policy.delay(attempt, 0.5)
        assert math.isfinite(delay)
        assert 15.0 <= delay <= 30.0


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.retries == 0
    assert policy.backoff == 2.0
    assert policy.initial_interval == 1.0
    assert policy.max_interval == 60.0
    assert policy.retry_on is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retries": -1},
        {"backoff": 0.5},
        {"backoff": 0.0},
        {"backoff": -2.0},
        {"initial_interval": -1.0},
        {"initial_interval": 10.0, "max_interval": 5.0},
        {"max_interval": -1.0},
        {"backoff": math.nan},
        {"initial_interval": math.nan},
        {"max_interval": math.nan},
        {"max_interval": math.inf, "initial_interval": math.inf},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_bad_values_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_bad_step_options_fail_at_decoration() -> None:
    async def fn() -> None:
        return None

    with pytest.raises(ValueError, match="retries"):
        step(retries=-1)(fn)
    with pytest.raises(ValueError, match="backoff"):
        step(backoff=0.1)(fn)
    with pytest.raises(ValueError):
        step(timeout="soon")(fn)
    with pytest.raises(ValueError):
        step(timeout=-1)(fn)


# --- @step --------------------------------------------------------------------------------


async def fetch_user(user_id: str) -> dict[str, str]:
    """Fetch a user."""
    return {"id": user_id}


def test_bare_step() -> None:
    s = step(fetch_user)
    assert isinstance(s, Step)
    assert s.fn is fetch_user
    assert s.name == "fetch_user"
    assert s.retry == RetryPolicy()
    assert s.timeout is None
    # functools.wraps: the step looks like the function.
    assert s.__name__ == "fetch_user"
    assert s.__doc__ == "Fetch a user."
    assert s.__wrapped__ is fetch_user  # type: ignore[attr-defined]


def test_step_with_options() -> None:
    @step(
        retries=3,
        backoff=3.0,
        initial_interval=0.5,
        max_interval=10.0,
        timeout="30s",
        retry_on=(KeyError, ValueError),
        name="charge",
    )
    async def charge(order_id: str, amount: int) -> str:
        return order_id

    assert isinstance(charge, Step)
    assert charge.name == "charge"
    assert charge.timeout == 30.0
    assert charge.retry == RetryPolicy(3, 3.0, 0.5, 10.0, (KeyError, ValueError))


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("5m", 300.0), ("1h30m", 5400.0), (2, 2.0), (1.5, 1.5)],
)
def test_step_timeout_parsed(timeout: Any, seconds: float) -> None:
    s = step(timeout=timeout)(fetch_user)
    assert s.timeout == pytest.approx(seconds)
    assert isinstance(s.timeout, float | int)


def test_step_retry_on_single_type_is_a_tuple() -> None:
    s = step(retries=2, retry_on=ConnectionError)(fetch_user)
    assert s.retry.retry_on == (ConnectionError,)
    s = step(retries=2, retry_on=(ConnectionError,))(fetch_user)
    assert s.retry.retry_on == (ConnectionError,)
    assert step(fetch_user).retry.retry_on is None


def test_step_default_name_is_qualname() -> None:
    @step()
    async def inner() -> None:
        return None

    assert inner.name == inner.fn.__qualname__
    assert inner.name.endswith("<locals>.inner")


def test_step_outside_workflow_is_plain_coroutine() -> None:
    import asyncio

    s = step(retries=3)(fetch_user)
    assert asyncio.run(s("u1")) == {"id": "u1"}  # type: ignore[arg-type]


@pytest.mark.parametrize("decorate", [step, step(), step(retries=1)])
def test_step_rejects_non_async_functions(decorate: Any) -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="async"):
        decorate(sync)


def test_step_rejects_async_generator() -> None:
    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError):
        step(agen)


# --- @workflow ----------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A fresh default registry, so these tests leave the real one untouched."""
    fresh = Registry()
    monkeypatch.setattr(_decorators, "default_registry", fresh)
    return fresh


async def checkout(order_id: str) -> str:
    """Check out an order."""
    return order_id


def test_bare_workflow_default_name_and_registration(registry: Registry) -> None:
    wf = workflow(checkout)
    assert isinstance(wf, Workflow)
    assert wf.name == f"{__name__}.checkout"
    assert wf.name == f"{checkout.__module__}.{checkout.__qualname__}"
    assert wf.version == 1
    assert wf.queue == "default"
    assert wf.timeout is None
    assert wf.schedule is None
    assert wf.timezone == "UTC"
    assert wf.__doc__ == "Check out an order."
    assert registry.get(wf.name) is wf
    assert list(registry) == [wf]


def test_workflow_default_name_of_nested_function(registry: Registry) -> None:
    @workflow
    async def nested() -> None:
        return None

    assert nested.name == f"{__name__}.{nested.fn.__qualname__}"


def test_workflow_with_options(registry: Registry) -> None:
    @workflow(
        name="checkout",
        version=2,
        queue="payments",
        timeout="2h",
        schedule="0 * * * *",
        timezone="Europe/Paris",
    )
    async def wf(order_id: str = "order-1") -> str:  # a tick passes no arguments
        return order_id

    assert wf.name == "checkout"
    assert wf.version == 2
    assert wf.queue == "payments"
    assert wf.timeout == 7200.0
    assert wf.schedule == "0 * * * *"
    assert wf.timezone == "Europe/Paris"
    assert registry.get("checkout") is wf
    assert registry.get("checkout", 2) is wf
    assert registry.get("checkout", 1) is None


@pytest.mark.parametrize("version", [0, -1])
def test_workflow_version_must_be_positive(registry: Registry, version: int) -> None:
    with pytest.raises(ValueError, match="version"):
        workflow(version=version)(checkout)
    assert len(registry) == 0


@pytest.mark.parametrize("decorate", [workflow, workflow(), workflow(name="x")])
def test_workflow_rejects_non_async_function(registry: Registry, decorate: Any) -> None:
    def sync() -> None:
        return None

    with pytest.raises(TypeError, match="async"):
        decorate(sync)
    assert len(registry) == 0


def test_workflow_outside_engine_runs_as_plain_coroutine(registry: Registry) -> None:
    import asyncio

    wf = workflow(checkout)
    assert asyncio.run(wf("o-1")) == "o-1"  # type: ignore[arg-type]


# --- Registry -----------------------------------------------------------------------------


def _wf(fn: Any, name: str = "orders", version: int = 1) -> Workflow[Any, Any]:
    return Workflow(
        fn,
        name=name,
        version=version,
        queue="default",
        timeout=None,
        schedule=None,
        timezone="UTC",
    )


async def first_impl() -> int:
    return 1


async def second_impl() -> int:
    return 2


def test_registry_rejects_other_function_under_same_name_and_version() -> None:
    reg = Registry([_wf(first_impl)])
    with pytest.raises(ValueError, match="orders") as info:
        reg.add(_wf(second_impl))
    assert "first_impl" in str(info.value)
    assert reg.get("orders") is not None
    assert reg.get("orders").fn is first_impl  # type: ignore[union-attr]


def test_registry_accepts_same_function_twice() -> None:
    a = _wf(first_impl)
    reg = Registry([a])
    reg.add(a)
    reg.add(_wf(first_impl))
    assert len(reg) == 1


def test_registry_same_name_other_version_is_fine() -> None:
    reg = Registry([_wf(first_impl, version=1), _wf(second_impl, version=2)])
    assert len(reg) == 2
    assert reg.get("orders", 1).fn is first_impl  # type: ignore[union-attr]
    assert reg.get("orders", 2).fn is second_impl  # type: ignore[union-attr]


def test_registry_get_returns_newest_version() -> None:
    v3, v1, v10 = _wf(first_impl, version=3), _wf(second_impl, version=1), _wf(checkout, version=10)
    reg = Registry([v3, v1, v10, _wf(fetch_user, name="other", version=99)])
    assert reg.get("orders") is v10
    assert reg.get("orders", 3) is v3
    assert reg.get("orders", 1) is v1
    assert reg.get("other").version == 99  # type: ignore[union-attr]
    assert reg.get("missing") is None
    assert reg.get("orders", 2) is None


def test_workflow_decorator_rejects_duplicate_in_default_registry(registry: Registry) -> None:
    workflow(name="dup")(first_impl)
    with pytest.raises(ValueError, match="dup"):
        workflow(name="dup")(second_impl)
    workflow(name="dup", version=2)(second_impl)
    assert registry.get("dup").fn is second_impl  # type: ignore[union-attr]
