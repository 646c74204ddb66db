"""The only place values and exceptions are encoded to JSON and decoded back.

Values go through pydantic ``TypeAdapter`` by their type hints, so dataclasses, models,
datetimes, UUIDs, Decimals and enums come back as the same types. Where there is no hint
(``Any``, or a start by name from a process without the code), plain JSON is used.

Only what comes back exactly is stored (invariant 7): NaN and infinity at any depth, a set
under ``Any``, None for a non-Optional hint, a NUL or a lone surrogate raise
``SerializationError`` at the call; error texts are escaped instead, so a failure is
never lost.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import sys
import traceback
import typing
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import pydantic_core
from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

from durable._foundation.limits import unstorable_text
from durable.errors import ErrorInfo, SerializationError, StepFailed, WorkflowFailed

__all__ = [
    "Signature",
    "decode_error",
    "decode_json",
    "encode_error",
    "encode_plain",
    "encode_start_input",
    "error_info",
    "rebuild_exception",
    "storable_text",
    "to_json",
    "unstorable_json",
]

# "constants": a NaN or infinity stays a float through dump_python, so that to_json (which
# refuses them) sees it; the default would turn one nested under Any into null silently.
_CONFIG = ConfigDict(ser_json_inf_nan="constants")
# Values that come back from JSON as themselves (same type, same content), checked with
# ``type(v) in``: subclasses (enums, bool under an int hint) are not.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_UNORDERED = (set, frozenset)
# One encoder for every payload: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Adapter:
    """A hint's pydantic validator, and a serializer that keeps NaN for to_json to refuse."""

    __slots__ = ("_dumper", "validator")

    def __init__(self, hint: Any) -> None:
        self._dumper: TypeAdapter[Any] | None = None
        try:
            self.validator: TypeAdapter[Any] = TypeAdapter(hint, config=_CONFIG)
        except PydanticUserError as exc:
            if exc.code != "type-adapter-config-unused":
                raise
            # Models, dataclasses and TypedDicts refuse an outer config, yet their fields
            # typed Any follow the config of the outermost serializer: dump them as the one
            # item of a tuple that has ours.
            self.validator = TypeAdapter(hint)
            self._dumper = TypeAdapter(tuple[hint], config=_CONFIG)

    def dump(self, value: Any) -> Any:
        # warnings="error": a value that does not match its hint is refused, not guessed at.
        if self._dumper is None:
            return self.validator.dump_python(value, mode="json", warnings="error")
        return self._dumper.dump_python((value,), mode="json", warnings="error")[0]


_ANY = _Adapter(Any)


def _adapter(hint: Any) -> _Adapter:
    if hint is inspect.Parameter.empty or hint is Any:
        return _ANY
    try:
        return _Adapter(hint)
    except Exception as exc:
        raise SerializationError(f"type {hint!r} cannot be stored as JSON: {exc}") from exc


def _dump(adapter: _Adapter, value: Any, what: str) -> Any:
    """The JSON-ready form of ``value``: only dicts with str keys, lists, str, int, float,
    bool and None (pydantic's JSON mode), so exactly what JSON text of it parses back to."""
    if type(value) is float and not math.isfinite(value):
        raise SerializationError(f"{what} cannot be encoded as JSON: {value!r} is not finite")
    if value is None and adapter is not _ANY:
        # pydantic dumps None under any hint without a warning: a step "-> int" whose body
        # fell off its end would be recorded as completed with null.
        _load(adapter, None, what)
    try:
        dumped = adapter.dump(value)
    except (pydantic_core.PydanticSerializationError, ValueError, TypeError) as exc:
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc
    # Compared in C; only a value that changed (a tuple, a set, ...) is walked in Python.
    if adapter is _ANY and not _unchanged(dumped, value):
        _refuse_sets(value, what)
    return dumped


def _unchanged(dumped: Any, value: Any) -> bool:
    try:
        return bool(dumped == value)
    except Exception:  # an __eq__ that raises (or is ambiguous): assume it changed
        return False


def _refuse_sets(value: Any, what: str) -> None:
    """Sets have no order and no JSON form: under ``Any`` one would come back as a list."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _UNORDERED):
            raise SerializationError(
                f"{what} cannot be stored: a {type(item).__name__} under an Any hint would "
                "come back as a list; convert it, or give the value a type hint"
            )
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _load(adapter: _Adapter, value: Any, what: str) -> Any:
    try:
        return adapter.validator.validate_python(value)
    except ValidationError as exc:
        raise SerializationError(f"{what} does not match its type: {exc}") from exc


def encode_plain(value: Any, what: str = "value") -> Any:
    """A JSON-ready form of ``value`` with no type hint to go by."""
    return _dump(_ANY, value, what)


def decode_json(raw: str | None) -> Any:
    """Parse JSON text from the database (None stays None)."""
    return None if raw is None else json.loads(raw)


def to_json(value: Any, what: str = "value") -> str:
    """JSON text of an already JSON-ready value that Postgres can store exactly.

    Raises ``SerializationError`` for NaN or infinity (JSON has neither), a NUL character
    (no Postgres text can hold one, so the payload could not be read back as text or
    jsonb) and a lone surrogate (not encodable as UTF-8).
    """
    try:
        text = _JSON.encode(value)
    except (ValueError, TypeError) as exc:  # NaN or infinity; a type json cannot write
        raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from exc
    problem = unstorable_json(text)
    if problem is not None:
        raise SerializationError(f"{what} cannot be stored: it contains {problem}")
    return text


def unstorable_json(text: str) -> str | None:
    """What in JSON text (as ``to_json`` writes it) Postgres cannot store, or None."""
    # json.dumps writes NUL as the escape \u0000: look for one not itself escaped.
    at = text.find("\\u0000")
    while at != -1:
        start = at
        while start > 0 and text[start - 1] == "\\":
            start -= 1
        if (at - start) % 2 == 0:  # an even run of backslashes before it: a real escape
            return "a NUL character (\\x00)"
        at = text.find("\\u0000", at + 1)
    return unstorable_text(text)


def storable_text(text: str) -> str:
    """``text`` with what Postgres cannot store escaped (NUL as ``\\x00``, a lone surrogate
    as ``\\udXXX``): for error messages and tracebacks, better recorded escaped than lost."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if unstorable_text(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
    def _params(self) -> dict[str, _Adapter]:
        return {name: _adapter(self._hints.get(name, Any)) for name in self._signature.parameters}

    @cached_property
    def _result(self) -> _Adapter:
        return _adapter(self._hints.get("return", Any))

    @cached_property
    def _scalar_result(self) -> type | None:
        """The return hint when it is one of the scalar types JSON keeps exactly."""
        hint = self._hints.get("return")
        return next((t for t in _SCALARS if hint is t), None)  # hints may be unhashable

    def _param_adapter(self, name: str) -> _Adapter:
        return self._params.get(name, _ANY)

    @cached_property
    def _layout(self) -> tuple[list[inspect.Parameter], Any, Any]:
        """(positional parameters, the *args parameter, the **kwargs parameter)."""
        params = list(self._signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        var_pos = next((p for p in params if p.kind is p.VAR_POSITIONAL), None)
        var_kw = next((p for p in params if p.kind is p.VAR_KEYWORD), None)
        return positional, var_pos, var_kw

    @cached_property
    def _positional_arity(self) -> tuple[int, float] | None:
        """(fewest, most) positional arguments a call with no keywords may pass; None when a
        keyword-only parameter is required (such a call never fits)."""
        params = self._signature.parameters.values()
        if any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params):
            return None
        positional, var_pos, _ = self._layout
        fewest = sum(1 for p in positional if p.default is p.empty)
        return fewest, math.inf if var_pos is not None else len(positional)

    def _bound(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        """The positional and keyword arguments of a call as binding gives them; TypeError
        when they do not fit. A keyword-free call only has its count checked: every start
        and every claim binds, and ``inspect``'s general binding costs a few µs."""
        arity = self._positional_arity
        if not kwargs and arity is not None and arity[0] <= len(args) <= arity[1]:
            return args, kwargs
        bound = self.bind(args, kwargs)
        return bound.args, bound.kwargs

    def _targets(self, count: int) -> list[inspect.Parameter | None]:
        """The parameter each of ``count`` positional arguments binds to."""
        positional, var_pos, _ = self._layout
        return [positional[i] if i < len(positional) else var_pos for i in range(count)]

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        """Bind a call to the signature; a bad call raises TypeError as Python would."""
        return self._signature.bind(*args, **kwargs)

    def encode_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """JSON text of a call's arguments, checked against the signature and hints."""
        bound_args, bound_kwargs = self._bound(args, kwargs)
        targets = self._targets(len(bound_args))
        out_args = [
            _dump(self._adapter_for(param), value, self._what(param))
            for param, value in zip(targets, bound_args, strict=True)
        ]
        var_kw = self._layout[2]
        out_kwargs = {}
        for key, value in bound_kwargs.items():
            param = self._keyword_target(key) or var_kw
            out_kwargs[key] = _dump(self._adapter_for(param), value, f"argument {key!r}")
        return to_json({"args": out_args, "kwargs": out_kwargs}, f"arguments of {self._name}")

    def encode_json_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """JSON text of a start by name, whose arguments are JSON-shaped values: validated
        and coerced by the hints exactly as the worker decodes them, then encoded."""
        plain = {
            "args": encode_plain(list(args), f"arguments of {self._name}"),
            "kwargs": encode_plain(dict(kwargs), f"arguments of {self._name}"),
        }
        typed_args, typed_kwargs = self.decode_args(plain)
        return self.encode_args(typed_args, typed_kwargs)

    def decode_args(self, raw: str | Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments rebuilt to their hinted types from stored JSON; ``SerializationError``
        when they do not fit the signature (a start by name from a process without the
        code stores them unchecked)."""
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, Mapping):
            raise SerializationError(f"the stored arguments of {self._name} are malformed")
        raw_args, raw_kwargs = data.get("args", []), data.get("kwargs", {})
        if not isinstance(raw_args, list) or not isinstance(raw_kwargs, dict):
            raise SerializationError(f"the stored arguments of {self._name} are malformed")
        try:
            self._bound(tuple(raw_args), raw_kwargs)
        except TypeError as exc:
            raise SerializationError(f"arguments of {self._name} do not fit: {exc}") from exc
        targets = self._targets(len(raw_args))
        args = tuple(
            _load(self._adapter_for(param), value, self._what(param))
            for param, value in zip(targets, raw_args, strict=True)
        )
        var_kw = self._layout[2]
        kwargs = {
            key: _load(
                self._adapter_for(self._keyword_target(key) or var_kw), value, f"argument {key!r}"
            )
            for key, value in raw_kwargs.items()
        }
        return args, kwargs

    def _keyword_target(self, key: str) -> inspect.Parameter | None:
        """The named parameter a keyword argument binds to (None: it goes to **kwargs)."""
        param = self._signature.parameters.get(key)
        if param is None or param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            return None
        return param if param.kind is not param.VAR_KEYWORD else None

    def _adapter_for(self, param: inspect.Parameter | None) -> _Adapter:
        return _ANY if param is None else self._param_adapter(param.name)

    def _what(self, param: inspect.Parameter | None) -> str:
        name = param.name if param is not None else "?"
        return f"argument {name!r} of {self._name}"

    def encode_result(self, value: Any) -> str:
        """JSON text of a return value, checked against the return hint."""
        return self.store_result(value)[0]

    def store_result(self, value: Any) -> tuple[str, Any]:
        """JSON text of a return value, and the value every replay will decode from it.

        The first execution returns that decoded value too, so it sees what replays see
        (a tuple under ``Any`` is a list both times, a model is rebuilt by its hint). A
        value under ``Any`` is its JSON-ready form, and a str, int, float, bool or None of
        exactly the hinted type is itself: both are provably what the text parses back to,
        so neither is decoded again.
        """
        what = f"result of {self._name}"
        if type(value) is self._scalar_result:
            # A str, int, float, bool or None of exactly its hinted type is its own JSON
            # form: pydantic would hand it back unchanged (to_json still refuses NaN, NUL).
            return to_json(value, what), value
        adapter = self._result
        dumped = _dump(adapter, value, what)
        text = to_json(dumped, what)
        if adapter is _ANY:
            return text, dumped
        if type(value) in _SCALARS and type(value) is self._hints.get("return"):
            return text, value
        return text, _load(adapter, json.loads(text), what)

    def decode_result(self, value: Any) -> Any:
        """A JSON-decoded return value rebuilt to the return hint's type."""
        return _load(self._result, value, f"result of {self._name}")


def encode_start_input(
    signature: Signature | None,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    by_name: bool,
) -> str:
    """The stored input of a start. A start by name takes JSON-shaped values: checked by
    the hints when this process has the code (``signature``), else stored for the worker
    to check, so what it accepts never depends on what the client imported."""
    if signature is None:
        plain = {"args": encode_plain(list(args)), "kwargs": encode_plain(dict(kwargs))}
        return to_json(plain, "arguments")
    if by_name:
        return signature.encode_json_args(args, kwargs)
    return signature.encode_args(args, kwargs)


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as failure:  # a broken __str__ must not lose the error itself
        return f"<{type(exc).__name__}: str() failed with {failure!r}>"


def encode_error(exc: BaseException) -> dict[str, Any]:
    """A JSON-ready record of an exception: type, message, code, traceback and args."""
    args: list[Any] | None = list(exc.args)
    try:
        # Only args that survive JSON unchanged can rebuild the same exception.
        if json.loads(to_json(args)) != args:
            args = None
    except (TypeError, ValueError):
        args = None
    code = getattr(exc, "code", None)
    # Texts Postgres cannot store are escaped: the failure is recorded once, never lost
    # (a write refused for them would leave the step to run again on every lease).
    record: dict[str, Any] = {
        "type": storable_text(_qualified_type(exc)),
        "message": storable_text(_message(exc)),
        "code": storable_text(code) if isinstance(code, str) else None,
        "traceback": storable_text("".join(traceback.format_exception(exc))),
        "args": args,
    }
    # durable's own wrappers carry a recorded error: keep it so they rebuild faithfully.
    inner = getattr(exc, "error", None)
    if isinstance(exc, StepFailed | WorkflowFailed) and isinstance(inner, ErrorInfo):
        record["error"] = dataclasses.asdict(inner)
        record["cursor_key"] = getattr(exc, "cursor_key", None)
        run_id = getattr(exc, "run_id", None)
        record["run_id"] = None if run_id is None else str(run_id)
    return record


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


def _rebuild_wrapper(info: ErrorInfo, record: Mapping[str, Any]) -> Exception | None:
    inner = record.get("error")
    if not isinstance(inner, Mapping):
        return None
    if info.type == "durable.errors.StepFailed":
        return StepFailed(error_info(inner), cursor_key=record.get("cursor_key"))
    if info.type == "durable.errors.WorkflowFailed":
        return WorkflowFailed(record.get("run_id"), error_info(inner))
    return None


def rebuild_exception(record: Mapping[str, Any], *, cursor_key: str | None = None) -> Exception:
    """The recorded exception as its own type where that type can be rebuilt, else StepFailed.

    The rebuilt exception carries the original traceback as a note.
    """
    info = error_info(record)
    wrapped = _rebuild_wrapper(info, record)
    if wrapped is not None:
        return wrapped
    cls = _find_type(info.type)
    args = record.get("args")
    exc: Exception | None = None
    if cls is not None and isinstance(args, list):
        try:
            built = cls(*args)
            # A constructor that formats its message would change it: report, don't rebuild.
            exc = built if isinstance(built, Exception) and str(built) == info.message else None
        except Exception:
            exc = None
    if exc is None:
        return StepFailed(info, cursor_key=cursor_key)
    if info.traceback:
        exc.add_note(f"Recorded traceback:\n{info.traceback.rstrip()}")
    return exc
