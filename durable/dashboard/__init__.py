"""The durable web dashboard: ``durable dashboard`` or ``dashboard_app(engine)`` mounted in
your own ASGI app. Needs the extra: ``pip install 'durable-sdk[dashboard]'``."""

from __future__ import annotations

from durable.dashboard._app import DashboardBackend, DashboardConfig, dashboard_app

__all__ = ["DashboardBackend", "DashboardConfig", "dashboard_app"]
