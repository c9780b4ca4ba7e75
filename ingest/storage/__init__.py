"""Storage backends behind one interface: InfluxDB (v1 API), embedded SQLite and in-memory."""

from ingest.storage.base import LatestReading, Storage, WindowStat, WriteReport
from ingest.storage.memory import MemoryStorage

__all__ = ["LatestReading", "MemoryStorage", "Storage", "WindowStat", "WriteReport"]
