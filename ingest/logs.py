"""Logging: plain text for people, JSON lines for log shippers. Secrets never reach a record."""

from __future__ import annotations

import json
import logging
import sys
import time

from ingest.settings import LogSettings

_LOG = LogSettings.model_fields  # the settings tree: one source of defaults


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        document = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure_logging(
    level: str = _LOG["level"].default, fmt: str = _LOG["format"].default
) -> None:
    """Send Siaga's logs to stderr in the chosen format (``log.level``, ``log.format``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO, with its URL: too loud at load, and URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
