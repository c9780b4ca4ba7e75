"""Siaga: IoT telemetry ingestion and flood alerts. This package is only the entry point."""

__version__ = "0.1.0"
