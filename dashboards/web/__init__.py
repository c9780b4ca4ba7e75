"""Siaga's web UI: pages and static assets mounted into the API's app (built by the web part)."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the UI's routes and static files to ``app`` (nothing yet)."""
