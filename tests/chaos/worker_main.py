"""The entry point shared by the chaos tests' worker processes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

import anyio


def run_worker(serve: Callable[[str], Awaitable[None]], module: str) -> None:
    """Log to stdout (the tests show it on failure) and serve the database URL in argv."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s",
    )
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m {module} <database_url>")
    anyio.run(serve, sys.argv[1])
