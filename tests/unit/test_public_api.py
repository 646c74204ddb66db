"""The public surface promised by API.md: names, docstrings, error codes, exports."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import durable
import durable.errors

INIT_SOURCE = Path(durable.__file__)

# Names API.md promises at module level of ``durable``, which must exist today.
REQUIRED = [
    "workflow",
    "step",
    "Engine",
    "RunHandle",
    "RunStatus",
    "RunDetail",
    "RunSummary",
    "StepInfo",
    "Page",
    "ErrorInfo",
    "current_run",
]

# API.md's Errors section: all in durable.errors, re-exported from durable.
API_ERRORS = [
    "DurableError",
    "StepFailed",
    "StepTimeout",
    "WorkflowFailed",
    "RunCancelled",
    "SignalTimeout",
    "NonDeterminismError",
    "SerializationError",
    "PayloadTooLarge",
    "UnknownWorkflow",
    "RunNotFound",
    "NonRetryableError",
]

# Also promised by API.md; may not be implemented yet, but once they exist they are exported.
PROMISED_LATER = [
    "sleep",
    "sleep_until",
    "wait_for_signal",
    "set_event",
    "now",
    "uuid4",
    "random",
    "patched",
    "logger",
    "SignalDelivery",
]


def _is_documented(obj: object) -> bool:
    doc = obj.__doc__
    if not doc or not doc.strip():
        return False
    # A dataclass without a docstring gets "Name(field: type, ...)" generated for it.
    name = getattr(obj, "__name__", "")
    return not (inspect.isclass(obj) and doc.startswith(f"{name}("))


@pytest.mark.parametrize("name", durable.__all__)
def test_every_exported_name_exists(name: str) -> None:
    assert hasattr(durable, name), f"durable.__all__ lists {name!r} but durable has no such name"


@pytest.mark.parametrize("name", durable.__all__)
def test_exported_classes_and_functions_are_documented(name: str) -> None:
    obj = getattr(durable, name)
    if inspect.isclass(obj) or callable(obj):
        assert _is_documented(obj), f"durable.{name} has no docstring"


def test_all_has_no_duplicates() -> None:
    assert len(durable.__all__) == len(set(durable.__all__))
    assert len(durable.errors.__all__) == len(set(durable.errors.__all__))


@pytest.mark.parametrize("name", REQUIRED + API_ERRORS)
def test_api_md_names_are_exported(name: str) -> None:
    assert hasattr(durable, name), f"API.md promises durable.{name}"
    assert name in durable.__all__, f"durable.{name} is missing from durable.__all__"


def test_api_md_names_that_exist_are_exported() -> None:
    existing = [name for name in PROMISED_LATER if hasattr(durable, name)]
    missing = [name for name in existing if name not in durable.__all__]
    assert not missing, f"promised by API.md, defined, but missing from __all__: {missing}"


@pytest.mark.parametrize("name", API_ERRORS)
def test_api_md_errors_live_in_durable_errors(name: str) -> None:
    assert name in durable.errors.__all__
    assert getattr(durable, name) is getattr(durable.errors, name)


@pytest.mark.parametrize("name", [n for n in durable.errors.__all__ if n != "ErrorInfo"])
def test_public_errors_derive_from_durable_error(name: str) -> None:
    cls = getattr(durable.errors, name)
    assert inspect.isclass(cls)
    assert issubclass(cls, durable.errors.DurableError)
    assert issubclass(cls, Exception)
    assert _is_documented(cls), f"durable.errors.{name} has no docstring"


def test_error_codes_are_distinct_stable_strings() -> None:
    codes: dict[str, str] = {}
    for name in durable.errors.__all__:
        cls = getattr(durable.errors, name)
        if not (inspect.isclass(cls) and issubclass(cls, durable.errors.DurableError)):
            continue
        # Defined on the class itself, not inherited from a parent.
        assert "code" in vars(cls), f"{name} does not define its own code"
        code = cls.code
        assert isinstance(code, str)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), f"{name}.code {code!r} is not snake_case"
        assert code not in codes, f"{name} and {codes.get(code)} share the code {code!r}"
        codes[code] = name
    assert set(codes.values()) >= {"DurableError", *API_ERRORS}


def test_some_known_codes() -> None:
    errors = durable.errors
    assert errors.DurableError.code == "durable_error"
    assert errors.StepFailed.code == "step_failed"
    assert errors.NonDeterminismError.code == "non_determinism"
    assert errors.SerializationError.code == "serialization_error"
    assert errors.RunNotFound.code == "run_not_found"
    assert errors.UnknownWorkflow.code == "unknown_workflow"


def test_errors_all_matches_public_classes_of_the_module() -> None:
    public = {
        name
        for name, obj in vars(durable.errors).items()
        if not name.startswith("_")
        and inspect.isclass(obj)
        and obj.__module__ == durable.errors.__name__
    }
    assert set(durable.errors.__all__) == public


def test_error_info_is_exported() -> None:
    info = durable.ErrorInfo(type="builtins.ValueError", message="bad", code=None, traceback=None)
    assert info.type == "builtins.ValueError"
    assert info.message == "bad"
    assert str(info) == "builtins.ValueError: bad"


def test_run_status_is_a_str_enum() -> None:
    status = durable.RunStatus("completed")
    assert status == "completed"
    assert status is durable.RunStatus.COMPLETED
    assert isinstance(status, str)
    assert str(status) == "completed"
    assert f"{status}" == "completed"
    assert {s.value for s in durable.RunStatus} == {
        "pending",
        "running",
        "sleeping",
        "waiting",
        "paused",
        "completed",
        "failed",
        "cancelled",
    }
    with pytest.raises(ValueError):
        durable.RunStatus("done")


def _names_bound_in_init() -> set[str]:
    """Public names that durable/__init__.py binds at module level (from its source)."""
    tree = ast.parse(INIT_SOURCE.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    names.discard("__all__")
    return {n for n in names if not n.startswith("_") and n != "*"}


def test_every_public_name_defined_in_init_is_in_all() -> None:
    defined = _names_bound_in_init()
    assert "workflow" in defined  # the parse found the imports
    missing = sorted(defined - set(durable.__all__))
    assert not missing, f"public names in durable/__init__.py missing from __all__: {missing}"


def test_every_public_attribute_of_durable_is_in_all() -> None:
    """Runtime view of the same rule: submodules aside, public attributes are exported."""
    missing = sorted(
        name
        for name, obj in vars(durable).items()
        if not name.startswith("_") and not inspect.ismodule(obj) and name not in durable.__all__
    )
    assert not missing, f"durable has public names missing from __all__: {missing}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from durable import *", namespace)
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(durable.__all__)


def test_version_is_a_string() -> None:
    assert isinstance(durable.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", durable.__version__)
