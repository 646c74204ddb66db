"""The only place values and exceptions are encoded to JSON and decoded back.

Values go through pydantic ``TypeAdapter`` by their type hints, so dataclasses, models,
datetimes, UUIDs, Decimals and enums come back as the same types. Where there is no hint
(``Any``, or a start by name from a process without the code), plain JSON is used.
"""

from __future__ import annotations

import inspect
import json
import sys
import traceback
import typing
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from durable.errors import ErrorInfo, SerializationError, StepFailed

__all__ = [
    "Signature",
    "decode_error",
    "decode_json",
    "encode_error",
    "encode_plain",
    "error_info",
    "rebuild_exception",
]

_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def _adapter(hint: Any) -> TypeAdapter[Any]:
    if hint is inspect.Parameter.empty or hint is Any:
        return _ANY
    try:
        return TypeAdapter(hint)
    except Exception as exc:
        raise SerializationError(f"type {hint!r} cannot be stored as JSON: {exc}") from exc


def _dump(adapter: TypeAdapter[Any], value: Any, what: str) -> Any:
    try:
        # warnings="error": a value that does not match its hint is refused, not guessed at.
        return adapter.dump_python(value, mode="json", warnings="error")
    except (pydantic_core.PydanticSerializationError, ValueError, TypeError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc


def _load(adapter: TypeAdapter[Any], value: Any, what: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise SerializationError(f"{what} does not match its type: {exc}") from exc


def encode_plain(value: Any, what: str = "value") -> Any:
    """A JSON-ready form of ``value`` with no type hint to go by."""
    return _dump(_ANY, value, what)


def decode_json(raw: str | None) -> Any:
    """Parse JSON text from the database (None stays None)."""
    return None if raw is None else json.loads(raw)


def to_json(value: Any) -> str:
    """JSON text of an already JSON-ready value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Signature:
    """Encodes and decodes the arguments and result of one function by its type hints.

    Arguments are stored as ``{"args": [...], "kwargs": {...}}`` so a process without the
    code can start a run by name with plain JSON values.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._name = getattr(fn, "__qualname__", repr(fn))

    @cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self._fn)

    @cached_property
    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self._fn, include_extras=True)
        except Exception:  # unresolvable forward refs: fall back to untyped JSON
            return {}

    @cached_property
    def _params(self) -> dict[str, TypeAdapter[Any]]:
        return {name: _adapter(self._hints.get(name, Any)) for name in self._signature.parameters}

    @cached_property
    def _result(self) -> TypeAdapter[Any]:
        return _adapter(self._hints.get("return", Any))

    def _param_adapter(self, name: str) -> TypeAdapter[Any]:
        return self._params.get(name, _ANY)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        """Bind a call to the signature; a bad call raises TypeError as Python would."""
        return self._signature.bind(*args, **kwargs)

    def encode_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """JSON text of a call's arguments, checked against the signature and hints."""
        bound = self.bind(args, kwargs)
        out_args: list[Any] = []
        out_kwargs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            param = self._signature.parameters[name]
            what = f"argument {name!r} of {self._name}"
            if param.kind is param.VAR_POSITIONAL:
                out_args.extend(_dump(self._param_adapter(name), v, what) for v in value)
            elif param.kind is param.VAR_KEYWORD:
                adapter = self._param_adapter(name)
                out_kwargs.update({k: _dump(adapter, v, what) for k, v in value.items()})
            elif param.kind is param.KEYWORD_ONLY:
                out_kwargs[name] = _dump(self._param_adapter(name), value, what)
            else:
                out_args.append(_dump(self._param_adapter(name), value, what))
        return to_json({"args": out_args, "kwargs": out_kwargs})

    def decode_args(self, raw: str | Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments rebuilt to their hinted types from stored JSON."""
        data = json.loads(raw) if isinstance(raw, str) else raw
        raw_args, raw_kwargs = list(data.get("args", [])), dict(data.get("kwargs", {}))
        params = list(self._signature.parameters.values())
        args: list[Any] = []
        for index, value in enumerate(raw_args):
            param = _positional_param(params, index)
            name = param.name if param else ""
            args.append(_load(self._param_adapter(name), value, f"argument {name!r}"))
        var_kw = next((p.name for p in params if p.kind is p.VAR_KEYWORD), "")
        kwargs = {
            key: _load(
                self._param_adapter(key if key in self._params else var_kw),
                value,
                f"argument {key!r}",
            )
            for key, value in raw_kwargs.items()
        }
        return tuple(args), kwargs

    def encode_result(self, value: Any) -> str:
        """JSON text of a return value, checked against the return hint."""
        return to_json(_dump(self._result, value, f"result of {self._name}"))

    def decode_result(self, value: Any) -> Any:
        """A JSON-decoded return value rebuilt to the return hint's type."""
        return _load(self._result, value, f"result of {self._name}")


def _positional_param(params: list[inspect.Parameter], index: int) -> inspect.Parameter | None:
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if index < len(positional):
        return positional[index]
    return next((p for p in params if p.kind is p.VAR_POSITIONAL), None)


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def encode_error(exc: BaseException) -> dict[str, Any]:
    """A JSON-ready record of an exception: type, message, code, traceback and args."""
    try:
        args = encode_plain(list(exc.args))
    except SerializationError:
        args = None  # the type will be reported, not rebuilt
    code = getattr(exc, "code", None)
    return {
        "type": _qualified_type(exc),
        "message": str(exc),
        "code": code if isinstance(code, str) else None,
        "traceback": "".join(traceback.format_exception(exc)),
        "args": args,
    }


def error_info(record: Mapping[str, Any]) -> ErrorInfo:
    """The public view of a recorded error."""
    return ErrorInfo(
        type=str(record.get("type", "builtins.Exception")),
        message=str(record.get("message", "")),
        code=record.get("code"),
        traceback=record.get("traceback"),
    )


def decode_error(raw: str | Mapping[str, Any] | None) -> ErrorInfo | None:
    """ErrorInfo from stored JSON text or an already decoded record."""
    if raw is None:
        return None
    return error_info(json.loads(raw) if isinstance(raw, str) else raw)


def _find_type(qualified: str) -> type[Exception] | None:
    module_name, _, qualname = qualified.rpartition(".")
    # Only modules already imported: stored type names never cause an import.
    obj: Any = sys.modules.get(module_name)
    if obj is None:
        module_name, _, outer = module_name.rpartition(".")
        obj = sys.modules.get(module_name)
        qualname = f"{outer}.{qualname}"
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


def rebuild_exception(record: Mapping[str, Any], *, cursor_key: str | None = None) -> Exception:
    """The recorded exception as its own type where that type can be rebuilt, else StepFailed.

    The rebuilt exception carries the original traceback as a note.
    """
    info = error_info(record)
    cls = _find_type(info.type)
    args = record.get("args")
    exc: Exception | None = None
    if cls is not None and isinstance(args, list):
        try:
            built = cls(*args)
            exc = built if isinstance(built, Exception) else None
        except Exception:
            exc = None
    if exc is None:
        return StepFailed(info, cursor_key=cursor_key)
    if info.traceback:
        exc.add_note(f"Recorded traceback:\n{info.traceback.rstrip()}")
    return exc
