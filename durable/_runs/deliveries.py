"""What becomes of a signal sent to a run: its delivery kinds, the name rule, and the
payload check a sender makes against the type a waiting run declared."""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from durable._foundation.codec import encode_plain, to_json
from durable._foundation.limits import check_text

__all__ = [
    "SignalDelivery",
    "SignalKind",
    "check_signal_name",
    "encode_payload",
    "resolve_type",
    "unchecked_note",
]


class SignalKind(enum.StrEnum):
    """What became of a signal sent with ``engine.signal``."""

    DELIVERED = "delivered"
    """The run was waiting for it and is now due."""
    BUFFERED = "buffered"
    """Stored; no wait of this name has timed out yet and none is armed: the run's next
    wait for this name consumes it."""
    DUPLICATE = "duplicate"
    """A signal with this idempotency key was already sent; nothing was stored."""
    EXPIRED = "expired"
    """Late: the latest wait of this name timed out and none is armed now. Still stored,
    for a later wait of the same name."""
    INVALID_PAYLOAD = "invalid_payload"
    """The payload does not match the type of the wait armed for it (checked when this
    process has that type); nothing was stored."""
    RUN_NOT_FOUND = "run_not_found"
    RUN_FINISHED = "run_finished"


@dataclass(frozen=True, slots=True)
class SignalDelivery:
    """The outcome of ``engine.signal``: ``kind`` and, when refused, why."""

    kind: SignalKind
    run_id: Any
    name: str
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the signal was stored (delivered, buffered or expired)."""
        return self.kind in (SignalKind.DELIVERED, SignalKind.BUFFERED, SignalKind.EXPIRED)


def check_signal_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(
            f"a signal name must be a non-empty string of up to 200 characters: {name!r}"
        )
    check_text("the signal name", name)
    return name


def resolve_type(name: str | None) -> Any:
    """The class a waiting run declared, if this process has it loaded (never imports)."""
    if not name:
        return None
    module_name, _, qualname = name.rpartition(".")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def unchecked_note(type_name: str | None, expected: Any) -> str | None:
    """Why a sender could not check a payload: the armed wait's type is not loaded here."""
    if type_name is None or expected is not None:
        return None
    return (
        f"not checked here: this process cannot resolve the wait's type {type_name}; "
        "the run rejects the payload if it does not fit"
    )


def encode_payload(payload: Any, expected: Any) -> tuple[str, str | None]:
    """JSON text of a signal payload, and why it is invalid for ``expected`` (None: fine)."""
    value = encode_plain(payload, "signal payload")
    text = to_json(value, "signal payload")
    if expected is None:
        return text, None
    try:
        TypeAdapter(expected).validate_python(value)
    except ValidationError as exc:
        return text, str(exc)
    return text, None
