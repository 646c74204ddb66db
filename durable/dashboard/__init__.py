"""The durable web dashboard: ``durable dashboard`` or ``dashboard_app(engine)`` mounted in
your own ASGI app. Needs the extra: ``pip install 'durable-sdk[dashboard]'``."""

from __future__ import annotations

from durable.dashboard._app import dashboard_app
from durable.dashboard._base import DashboardBackend, DashboardConfig

__all__ = ["DashboardBackend", "DashboardConfig", "dashboard_app"]
