"""Siaga's HTTP API (FastAPI): stations, readings, incidents, CAP feed, live events."""

from __future__ import annotations

from dashboards.api.app import create_app, sql_engine

__all__ = ["create_app", "sql_engine"]
