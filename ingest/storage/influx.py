"""InfluxDB through its v1 HTTP API: ``/write`` line protocol and ``/query`` InfluxQL.

InfluxDB 1.x serves this API natively and 2.x/3.x serve it for compatibility (token auth), so one
backend reaches all three. Schema: measurement ``telemetry`` (tags ``station``, ``regency``,
``river``; fields the metrics and ``seq``) and ``rejected`` (tags ``reason``, ``station`` when
known; fields ``topic``, ``payload``, ``detail``). A point's identity is its series and time, so
a replayed reading overwrites itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from devices import Reading, Reason, Rejection, StationRegistry
from devices.health import StationHealth
from ingest.batch import Batch, StoredRejection
from ingest.errors import PermanentStorageError, RetryableStorageError, StorageError
from ingest.lineprotocol import LineProtocolError, encode_fields, escape_field_key, series_key
from ingest.settings import InfluxSettings
from ingest.storage import rollup
from ingest.storage.base import (
    ALERTS,
    DEVICE_HEALTH,
    REJECTED,
    TELEMETRY,
    AlertRecord,
    LatestReading,
    MetricSpan,
    WindowStat,
    WriteReport,
)

log = logging.getLogger(__name__)

StationTags = Callable[[str], Mapping[str, str]]
_GZIP_MIN_BYTES = 4096
_MAX_TEMPLATES = 100_000
_MAX_FLOAT_TEXTS = 100_000


def registry_tags(registry: StationRegistry) -> StationTags:
    """Tags for a station's telemetry series, read from the registry."""

    def tags(station_id: str) -> Mapping[str, str]:
        station = registry.get(station_id)
        if station is None:
            return {"station": station_id}
        return {"station": station_id, "regency": station.regency, "river": station.river or ""}

    return tags


class LineEncoder:
    """Encodes readings and rejections as line protocol, caching each station's series key."""

    def __init__(self, station_tags: StationTags) -> None:
        self._station_tags = station_tags
        self._series: dict[str, str] = {}
        self._field_keys: dict[str, str] = {}
        # (station, metric names...) → the line with %-placeholders for values, seq and time.
        self._templates: dict[tuple[str, ...], str] = {}
        self._templates_seq: dict[tuple[str, ...], str] = {}
        # Value → its shortest round-trip text: sensors repeat values, and repr costs more
        # than a lookup. Equal floats other than ±0 have the same bits, so the same text.
        self._float_texts: dict[float, str] = {}

    def station_tags(self, station_id: str) -> Mapping[str, str]:
        """The tags of a station's series."""
        return self._station_tags(station_id)

    def forget_stations(self) -> None:
        """Drop cached series keys (after the registry changed)."""
        self._series.clear()
        self._templates.clear()
        self._templates_seq.clear()

    def reading(self, reading: Reading) -> str:
        """One telemetry line. Metric values are always floats, so types never conflict."""
        values = reading.values
        shape = (reading.station_id, *values)
        seq = reading.seq
        templates = self._templates if seq is None else self._templates_seq
        template = templates.get(shape)
        if template is None:
            template = self._template(reading)
            if len(templates) >= _MAX_TEMPLATES:
                templates.clear()
            templates[shape] = template
        texts = self._float_texts
        args = []
        for value in values.values():
            if type(value) is float:
                text = texts.get(value)
                if text is None:
                    text = repr(value)
                    if value:  # zero keeps its sign: -0.0 equals 0.0 as a key
                        if len(texts) >= _MAX_FLOAT_TEXTS:
                            texts.clear()
                        texts[value] = text
            else:
                text = repr(value)
            args.append(text)
        if seq is None:
            return template % (*args, reading.ts_ns)
        return template % (*args, seq, reading.ts_ns)

    def _template(self, reading: Reading) -> str:
        """The line of a reading's station and metrics, values left as placeholders."""
        series = self._series.get(reading.station_id)
        if series is None:
            series = series_key(TELEMETRY, self._station_tags(reading.station_id))
            self._series[reading.station_id] = series
        keys = self._field_keys
        parts = []
        for name in reading.values:
            key = keys.get(name)
            if key is None:
                key = keys[name] = escape_field_key(name)
            parts.append(key.replace("%", "%%") + "=%s")
        if not parts:
            raise LineProtocolError("a reading without values cannot be stored")
        if reading.seq is not None:
            parts.append("seq=%si")
        return f"{series.replace('%', '%%')} {','.join(parts)} %s"

    @staticmethod
    def rejection(stored: StoredRejection) -> str:
        """One ``rejected`` line."""
        tags = {"reason": stored.rejection.reason.value}
        if stored.rejection.station_id:
            tags["station"] = stored.rejection.station_id
        fields = {
            "topic": stored.topic,
            "payload": stored.payload_excerpt,
            "detail": stored.rejection.detail,
        }
        return f"{series_key(REJECTED, tags)} {encode_fields(fields)} {stored.received_ns}"


_BAD_DATA = frozenset({400, 413})
"""Write statuses that blame lines of the body: found by halving, stored as rejections."""


def _judged_early(status: int) -> bool:
    return status == 429 or status >= 500 or status in {401, 403}


_JUDGED_EARLY = frozenset(s for s in range(400, 600) if _judged_early(s))


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delay-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def judge_response(status: int, text: str, headers: Mapping[str, str]) -> StorageError:
    """The one place that decides whether an InfluxDB answer is worth retrying.

    429 and 5xx are retryable (honouring ``Retry-After``); every other 4xx is permanent:
    credentials (401, 403), a missing database with ``create_database`` off, a bad query.
    """
    wait_s = retry_after_s(headers.get("retry-after"))
    if status == 429 or status >= 500:
        return RetryableStorageError(
            f"InfluxDB answered {status}: {text[:200]}", retry_after_s=wait_s
        )
    if status in {401, 403}:
        return PermanentStorageError(f"InfluxDB refused the credentials ({status})", status)
    return PermanentStorageError(f"InfluxDB refused the request ({status}): {text[:300]}", status)


# InfluxQL's scanner reads a quoted string up to its closing quote and knows four escapes:
# \\ \' \" and \n. Its reader turns CR and CRLF into LF, and a raw LF ends the string with an
# error (an HTTP 400, which a caller turned into a 500); NUL is its end-of-input mark. CR and
# NUL have no escape at all: a value holding them is matched by a regular expression instead.
_INFLUXQL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n"})
_UNQUOTABLE = frozenset("\r\0")


def quote_influxql(value: str, quote: str = "'") -> str:
    """``value`` as an InfluxQL string literal (``'``) or quoted identifier (``"``).

    Raises:
        ValueError: ``value`` holds CR or NUL, which no InfluxQL literal can carry (see
            :func:`influxql_equals` for a condition that can).
    """
    if not _UNQUOTABLE.isdisjoint(value):
        raise ValueError(f"InfluxQL cannot quote {value!r}: it holds CR or NUL")
    return quote + value.translate(_INFLUXQL_ESCAPES) + quote


def influxql_equals(tag: str, value: str) -> str:
    """The condition ``tag`` equals ``value``, for any value.

    A literal when InfluxQL can quote it; else an anchored regular expression whose every
    character outside ``[A-Za-z0-9]`` is written as ``\\x{…}`` (Go's regexp syntax, which
    InfluxQL's ``/…/`` passes through): no byte of ``value`` reaches the query raw.
    """
    key = quote_influxql(tag, '"')
    if _UNQUOTABLE.isdisjoint(value):
        return f"{key} = {quote_influxql(value)}"
    pattern = "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in value)
    return f"{key} =~ /^{pattern}$/"


def _station_is(station_id: str) -> str:
    return influxql_equals("station", station_id)


def _quote_string(value: str) -> str:
    return quote_influxql(value, "'")


def _quote_identifier(name: str) -> str:
    return quote_influxql(name, '"')


def _records(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a query's first series as column -> value (none when nothing matched)."""
    if not series:
        return []
    columns = series[0]["columns"]
    return [dict(zip(columns, row, strict=True)) for row in series[0]["values"]]


@dataclass(frozen=True, slots=True)
class RollupPass:
    """What one background pass over the dirty hours did.

    Attributes:
        marks: Distinct ``(hour, station)`` marks read (a whole-hour mark counts once).
        hours: Hours recomputed (each once, whatever the number of marks).
        statements: ``SELECT … INTO`` statements run.
    """

    marks: int = 0
    hours: int = 0
    statements: int = 0


MarksObserver = Callable[[rollup.Marks], None]
_MAX_DIRTY_RUNS = 8
"""More separate dirty runs than this in one chart: read its rollup range raw in one query."""


class InfluxStorage:
    """Storage on an InfluxDB server's v1 API.

    Args:
        settings: URL, database, credentials and timeouts.
        station_tags: Tags for each station's telemetry series.
        transport: An httpx transport to use instead of the network (tests).
        writer: Tags this writer's dirty-hour marks (the worker's MQTT client id, unique by
            the protocol); a random id by default.
    """

    def __init__(
        self,
        settings: InfluxSettings,
        station_tags: StationTags,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        writer: str | None = None,
    ) -> None:
        self._settings = settings
        self.encoder = LineEncoder(station_tags)
        self.clock_ns: Callable[[], int] = time.time_ns
        # Known after prepare(): whether the hourly rollup exists and may answer long windows.
        self.rollups_ready = False
        self.writer = writer or f"w-{uuid.uuid4().hex[:12]}"
        self.on_marks: MarksObserver = lambda _marks: None
        self._last_mark_ns = 0
        # First mark time of each write still on its way: a pass never deletes marks from
        # there on, whatever the settle time, since their readings may not be visible yet.
        self._marks_in_flight: list[int] = []
        headers = {}
        auth: httpx.BasicAuth | None = None
        if settings.token is not None:
            headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = httpx.BasicAuth(settings.username, password)
        self._client = httpx.AsyncClient(
            base_url=settings.url,
            headers=headers,
            auth=auth,
            timeout=settings.timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    async def __aenter__(self) -> InfluxStorage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, params: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        """One request, with transport failures and 5xx translated to RetryableStorageError."""
        try:
            response = await self._client.request(method, path, params=params, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryableStorageError(f"InfluxDB timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryableStorageError(f"InfluxDB unreachable: {exc}") from exc
        if response.status_code in _JUDGED_EARLY:
            raise judge_response(response.status_code, response.text, response.headers)
        return response

    async def query(
        self, statement: str, *, write: bool = False, timeout_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Run InfluxQL and return the first statement's series (``name``, ``columns``, ...).

        ``timeout_s`` replaces ``influx.timeout_s`` for this statement.
        """
        params = {"q": statement, "db": self._settings.database, "epoch": "ns"}
        extra: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        response = await self._request("POST" if write else "GET", "/query", params, **extra)
        if response.status_code >= 400:
            raise judge_response(response.status_code, response.text, response.headers)
        document = response.json()
        result = (document.get("results") or [{}])[0]
        if "error" in result:
            raise PermanentStorageError(f"InfluxDB query failed: {result['error']}")
        series: list[dict[str, Any]] = result.get("series") or []
        return series

    async def prepare(self) -> None:
        """Create the database, its retention policy and the hourly rollup when missing."""
        database = _quote_identifier(self._settings.database)
        policy = _quote_identifier(self._settings.retention_policy)
        if self._settings.create_database:
            await self.query(f"CREATE DATABASE {database}", write=True)
        existing = await self.query(f"SHOW RETENTION POLICIES ON {database}")
        names = {row[0] for s in existing for row in s.get("values", [])}
        if self._settings.create_database and self._settings.retention_policy not in names:
            await self.query(
                f"CREATE RETENTION POLICY {policy} ON {database} "
                f"DURATION {self._settings.retention_days}d REPLICATION 1 DEFAULT",
                write=True,
            )
        if self._settings.rollups:
            await self._prepare_rollups(names)

    async def _prepare_rollups(self, policies: set[str]) -> None:
        """The rollup's retention policy and continuous query; a first one is backfilled.

        InfluxDB 2.x and 3.x have no continuous queries: there, charts read raw readings.
        """
        settings = self._settings
        database = _quote_identifier(settings.database)
        try:
            if settings.rollup_policy not in policies:
                await self.query(
                    f"CREATE RETENTION POLICY {_quote_identifier(settings.rollup_policy)} "
                    f"ON {database} DURATION {settings.rollup_retention_days}d REPLICATION 1",
                    write=True,
                )
            if not await self._has_continuous_query():
                await self.query(
                    rollup.continuous_query(
                        settings.database, settings.retention_policy, settings.rollup_policy
                    ),
                    write=True,
                )
                await self._backfill_rollup()
        except PermanentStorageError as exc:
            # Another process may have created it meanwhile; otherwise this server has none.
            if not await self._has_continuous_query():
                log.warning("hourly rollups are off, charts read raw readings: %s", exc)
                self.rollups_ready = False
                return
        self.rollups_ready = True

    async def _has_continuous_query(self) -> bool:
        try:
            existing = await self.query("SHOW CONTINUOUS QUERIES")
        except PermanentStorageError:
            return False
        return any(
            row[0] == rollup.CQ_NAME
            for entry in existing
            if entry.get("name") == self._settings.database
            for row in entry.get("values", [])
        )

    async def _backfill_rollup(self) -> None:
        """Roll up what the retention window holds, a month at a time (once, at creation)."""
        now_ns = self.clock_ns()
        month_ns = 30 * 86400 * rollup.NS
        start = now_ns - self._settings.retention_days * 86400 * rollup.NS
        while start < now_ns:
            await self.refresh_rollup(start, min(start + month_ns, now_ns + rollup.HOUR_NS))
            start += month_ns

    async def refresh_rollup(
        self, start_ns: int, end_ns: int, station_ids: Sequence[str] | None = None
    ) -> None:
        """Recompute the hourly rollup over ``[start_ns, end_ns)`` (whole hours)."""
        settings = self._settings
        await self.query(
            rollup.refresh_statement(
                settings.database,
                settings.retention_policy,
                settings.rollup_policy,
                start_ns=start_ns,
                end_ns=end_ns,
                station_ids=station_ids,
            ),
            write=True,
            timeout_s=settings.rollup_timeout_s,
        )

    # -- dirty hours -------------------------------------------------------------------------

    def _dirty_lines(self, readings: Sequence[Reading]) -> tuple[list[str], int | None]:
        """Marks for the hours late ``readings`` make dirty, and the time of the first one."""
        if not (self.rollups_ready and readings):
            return [], None
        now_ns = self.clock_ns()
        marks = rollup.dirty_marks(
            readings, rollup.late_horizon(now_ns), self._settings.rollup_marks_per_batch
        )
        if not marks.pairs:
            return [], None
        first_ns = max(now_ns, self._last_mark_ns + 1)
        self._last_mark_ns = first_ns + len(marks.pairs) - 1
        self.on_marks(marks)
        return rollup.mark_lines(marks, first_ns, self.writer), first_ns

    async def refresh_dirty(self) -> RollupPass:
        """Recompute every hour marked dirty long enough ago, once, then delete those marks.

        Marks are read up to a cut (now less ``rollup_settle_s``, and before any write of ours
        still on its way), so every mark read had its readings visible: the recompute sees
        them, and deleting by time removes only marks that were read. A mark made meanwhile
        stays for the next pass. Nothing is kept in memory between passes: a worker killed
        after acknowledging a batch left its marks in InfluxDB with its readings, and the next
        pass (of any worker) recomputes them.
        """
        if not self.rollups_ready:
            return RollupPass()
        settings = self._settings
        cut_ns = self.clock_ns() - int(settings.rollup_settle_s * rollup.NS)
        if self._marks_in_flight:
            cut_ns = min(cut_ns, *self._marks_in_flight)
        policy = _quote_identifier(settings.retention_policy)
        series = await self.query(
            f'SELECT DISTINCT("hour") FROM {policy}.{rollup.DIRTY} '
            f"WHERE time < {cut_ns} GROUP BY station"
        )
        dirty = {
            entry["tags"]["station"]: [int(value) for _, value in entry["values"]]
            for entry in series
        }
        if not dirty:
            return RollupPass()
        plan = rollup.refreshes(
            dirty, max_stations=rollup.REFRESH_MAX_STATIONS, max_hours=rollup.REFRESH_MAX_HOURS
        )
        for step in plan:
            await self.refresh_rollup(step.start_ns, step.end_ns, step.station_ids)
        await self.query(f"DELETE FROM {rollup.DIRTY} WHERE time < {cut_ns}", write=True)
        return RollupPass(
            marks=sum(len(hours) for hours in dirty.values()),
            hours=sum((step.end_ns - step.start_ns) // rollup.HOUR_NS for step in plan),
            statements=len(plan),
        )

    async def _dirty_hours(self, station_id: str, start_ns: int, end_ns: int) -> list[int]:
        """Hours in ``[start_ns, end_ns)`` marked dirty for the station or for all stations."""
        policy = _quote_identifier(self._settings.retention_policy)
        series = await self.query(
            f'SELECT DISTINCT("hour") FROM {policy}.{rollup.DIRTY} '
            f"WHERE (station = {_quote_string(station_id)} "
            f"OR station = {_quote_string(rollup.ALL_STATIONS)}) "
            f'AND "hour" >= {rollup.floor_hour(start_ns)} AND "hour" < {int(end_ns)}'
        )
        return [int(value) for entry in series for _, value in entry["values"]]

    # -- writing -----------------------------------------------------------------------------

    async def write(self, batch: Batch) -> WriteReport:
        """Write a batch; lines the server refuses as bad data become rejections.

        Readings older than the continuous query's reach also write marks of the hours they
        make dirty, in the same request: a mark is durable exactly when its readings are.
        """
        lines: list[str]
        sources: list[Reading | StoredRejection]
        refused: list[StoredRejection] = []
        encode = self.encoder.reading
        try:
            lines = [encode(reading) for reading in batch.readings]  # all of them, usually
            sources = list(batch.readings)
        except LineProtocolError:
            lines, sources = [], []
            for reading in batch.readings:
                try:
                    lines.append(encode(reading))
                    sources.append(reading)
                except LineProtocolError as exc:
                    refused.append(_refusal(reading, str(exc)))
        for stored in batch.rejections:
            try:
                lines.append(self.encoder.rejection(stored))
            except LineProtocolError as exc:
                # Cannot happen with the tags Siaga produces; never let it stop the writer.
                log.error("a rejection record cannot be encoded (%s): %r", exc, stored)
                continue
            sources.append(stored)
        marks, first_mark_ns = self._dirty_lines(batch.readings)
        lines += marks
        if first_mark_ns is not None:
            self._marks_in_flight.append(first_mark_ns)
        try:
            bad = await self._write_lines(lines, 0, len(lines))
        finally:
            if first_mark_ns is not None:
                self._marks_in_flight.remove(first_mark_ns)
        for index, message in bad:
            if index >= len(sources):
                # Cannot happen with the marks Siaga writes. A lost mark leaves its hour's
                # rollup stale until a later reading marks it again: say so loudly, go on.
                log.error("InfluxDB refused a dirty-hour mark: %s", message[:300])
                continue
            source = sources[index]
            if isinstance(source, StoredRejection):
                # A rejection record the server will not take: say so loudly, do not loop.
                log.error("InfluxDB refused a rejection record: %s", message[:300])
            else:
                refused.append(_refusal(source, message))
        if refused:
            await self._write_lines([self.encoder.rejection(r) for r in refused], 0, len(refused))
        kept = len(sources) - sum(1 for index, _ in bad if index < len(sources))
        return WriteReport(stored=kept, refused=len(refused))

    async def _write_lines(self, lines: list[str], start: int, end: int) -> list[tuple[int, str]]:
        """POST ``lines[start:end]``; on a 400 split in halves to find the lines at fault.

        InfluxDB 1.x stores the good lines of a partial write anyway; rewriting them is harmless
        because points are idempotent, and 2.x/3.x, which may store nothing, are covered too.
        """
        if start == end:
            return []
        body = ("\n".join(lines[start:end]) + "\n").encode()
        status, text = await self._post_write(body)
        if status < 300:
            return []
        if status not in _BAD_DATA:
            raise judge_response(status, text, {})
        if end - start == 1:
            return [(start, text)]
        middle = (start + end) // 2
        return await self._write_lines(lines, start, middle) + await self._write_lines(
            lines, middle, end
        )

    async def _post_write(self, body: bytes) -> tuple[int, str]:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._settings.gzip and len(body) >= _GZIP_MIN_BYTES:
            # zlib releases the GIL: compressing in a thread overlaps with message parsing.
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers["Content-Encoding"] = "gzip"
        params = {
            "db": self._settings.database,
            "rp": self._settings.retention_policy,
            "precision": "ns",
        }
        response = await self._request("POST", "/write", params, content=body, headers=headers)
        if response.status_code == 404:
            # The database is missing: InfluxDB was down at start-up, or it was dropped.
            if self._settings.create_database:
                await self.prepare()
                response = await self._request(
                    "POST", "/write", params, content=body, headers=headers
                )
            if response.status_code == 404:
                # Retryable: someone may create the database (create_database is off).
                raise RetryableStorageError(f"InfluxDB: {response.text[:200]}")
        return response.status_code, response.text[:500]

    async def write_health(self, snapshots: Sequence[StationHealth], ts_ns: int) -> None:
        """Store health snapshots as measurement ``device_health``."""
        lines = [_health_line(s, self.encoder.station_tags(s.station_id), ts_ns) for s in snapshots]
        bad = await self._write_lines(lines, 0, len(lines))
        for _, message in bad:
            log.error("InfluxDB refused a device_health line: %s", message[:300])

    async def health(self) -> dict[str, StationHealth]:
        """Each station's latest health snapshot."""
        series = await self.query(
            f"SELECT * FROM {DEVICE_HEALTH} GROUP BY station ORDER BY time DESC LIMIT 1"
        )
        found = {}
        for entry in series:
            record = dict(zip(entry["columns"], entry["values"][0], strict=True))
            station_id = entry["tags"]["station"]
            values = {name: record.get(name) for name in _HEALTH_FIELDS}
            for name in _HEALTH_INTEGERS:
                values[name] = int(values[name] or 0)
            found[station_id] = StationHealth(station_id=station_id, **values)  # type: ignore[arg-type]
        return found

    async def write_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Store alert events as measurement ``alerts``."""
        if not records:
            return
        lines = [alert_line(r) for r in records]
        bad = await self._write_lines(lines, 0, len(lines))
        for _, message in bad:
            log.error("InfluxDB refused an alerts line: %s", message[:300])

    async def alerts(
        self,
        since_ns: int,
        until_ns: int | None = None,
        station_ids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[AlertRecord]:
        """Oldest first."""
        condition = f"time >= {int(since_ns)}"
        if until_ns is not None:
            condition += f" AND time < {int(until_ns)}"
        if station_ids is not None:
            if not station_ids:
                return []
            condition += " AND (" + " OR ".join(f"{_station_is(s)}" for s in station_ids) + ")"
        series = await self.query(
            f"SELECT * FROM {ALERTS} WHERE {condition} ORDER BY time ASC LIMIT {int(limit)}"
        )
        return [
            AlertRecord(
                ts_ns=int(record["time"]),
                station_id=record.get("station") or "",
                kind=record.get("kind") or "",
                rule=record.get("rule") or "",
                level=record.get("level") or "",
                firing=bool(record.get("firing")),
                late=bool(record.get("late")),
                text=record.get("text") or "",
                event_id=record.get("event_id") or "",
            )
            for record in _records(series)
        ]

    # -- reading -----------------------------------------------------------------------------

    async def latest(self, station_ids: Sequence[str] | None = None) -> dict[str, LatestReading]:
        """Each station's reading with the newest timestamp."""
        where = ""
        if station_ids is not None:
            if not station_ids:
                return {}
            where = " WHERE " + " OR ".join(f"{_station_is(s)}" for s in station_ids)
        series = await self.query(
            f"SELECT * FROM {TELEMETRY}{where} GROUP BY station ORDER BY time DESC LIMIT 1"
        )
        found: dict[str, LatestReading] = {}
        for entry in series:
            station_id = entry["tags"]["station"]
            columns = entry["columns"]
            row = entry["values"][0]
            values = {
                c: float(v)
                for c, v in zip(columns, row, strict=True)
                if c not in {"time", "station", "regency", "river", "seq"}
                and isinstance(v, int | float)
            }
            found[station_id] = LatestReading(station_id, int(row[0]), values)
        return found

    async def window(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> list[WindowStat]:
        """Mean, min, max and count per window, windows aligned to the epoch.

        Long windows of whole hours read the hourly rollup where it is final, and raw readings
        for the partial hour at the start, the recent hours at the end and every hour marked
        dirty (late readings not rolled up yet).
        """
        chosen = rollup.plan(start_ns, end_ns, window_s, self.clock_ns())
        if not (self.rollups_ready and chosen.use_rollup):
            return await self._raw_window(station_id, metric, start_ns, end_ns, window_s)
        head, (rows, middle), tail = await asyncio.gather(
            self._raw_window(station_id, metric, start_ns, chosen.head_end, window_s),
            self._clean_rollup(station_id, metric, chosen.head_end, chosen.tail_start, window_s),
            self._raw_window(station_id, metric, chosen.tail_start, end_ns, window_s),
        )
        return rollup.merge(window_s, [*head, *middle, *tail], rows)

    async def _clean_rollup(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> tuple[list[tuple[int, float, int, float, float]], list[WindowStat]]:
        """Rollup rows of the clean hours of ``[start_ns, end_ns)``, raw windows of the dirty.

        The marks are read before the rows: a pass deletes a mark only after its recompute,
        so rows read after a mark was seen gone are already recomputed.
        """
        dirty = await self._dirty_hours(station_id, start_ns, end_ns)
        runs = rollup.dirty_runs(start_ns, end_ns, dirty)
        if len(runs) > _MAX_DIRTY_RUNS:
            return [], await self._raw_window(station_id, metric, start_ns, end_ns, window_s)
        rows, raw = await asyncio.gather(
            self._rollup_rows(station_id, metric, start_ns, end_ns),
            asyncio.gather(
                *(self._raw_window(station_id, metric, low, high, window_s) for low, high in runs)
            ),
        )
        skip = set(dirty)
        return [row for row in rows if row[0] not in skip], [s for part in raw for s in part]

    async def _rollup_rows(
        self, station_id: str, metric: str, start_ns: int, end_ns: int
    ) -> list[tuple[int, float, int, float, float]]:
        names = [_quote_identifier(f"{a}_{metric}") for a in ("sum", "count", "min", "max")]
        policy = _quote_identifier(self._settings.rollup_policy)
        series = await self.query(
            f"SELECT {', '.join(names)} FROM {policy}.{rollup.ROLLUP} "
            f"WHERE {_station_is(station_id)} "
            f"AND time >= {int(start_ns)} AND time < {int(end_ns)}"
        )
        if not series:
            return []
        return [
            (int(t), float(total), int(count), float(low), float(high))
            for t, total, count, low, high in series[0]["values"]
            if count
        ]

    async def _raw_window(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> list[WindowStat]:
        if start_ns >= end_ns:
            return []
        field = _quote_identifier(metric)
        series = await self.query(
            f"SELECT mean({field}), min({field}), max({field}), count({field}) FROM {TELEMETRY} "
            f"WHERE {_station_is(station_id)} AND time >= {start_ns} "
            f"AND time < {end_ns} GROUP BY time({int(window_s)}s) fill(none)"
        )
        if not series:
            return []
        return [
            WindowStat(int(t), float(mean), float(lo), float(hi), int(count))
            for t, mean, lo, hi, count in series[0]["values"]
        ]

    async def rejections(
        self,
        since_ns: int,
        limit: int = 100,
        reason: Reason | None = None,
        station_id: str | None = None,
        until_ns: int | None = None,
    ) -> list[StoredRejection]:
        """Newest first."""
        condition = f"time >= {int(since_ns)}"
        if until_ns is not None:
            condition += f" AND time < {int(until_ns)}"
        if reason is not None:
            condition += f" AND reason = {_quote_string(reason.value)}"
        if station_id is not None:
            condition += f" AND {_station_is(station_id)}"
        series = await self.query(
            f"SELECT * FROM {REJECTED} WHERE {condition} ORDER BY time DESC LIMIT {int(limit)}"
        )
        return [
            StoredRejection(
                Rejection(Reason(record["reason"]), record["detail"], record.get("station")),
                record["topic"],
                record["payload"],
                int(record["time"]),
            )
            for record in _records(series)
        ]

    async def readings(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, limit: int
    ) -> list[tuple[int, float]]:
        """Oldest first, at most ``limit``."""
        field = _quote_identifier(metric)
        series = await self.query(
            f"SELECT {field} FROM {TELEMETRY} WHERE {_station_is(station_id)} "
            f"AND time >= {int(start_ns)} AND time < {int(end_ns)} LIMIT {int(limit)}"
        )
        if not series:
            return []
        return [(int(t), float(v)) for t, v in series[0]["values"] if v is not None]

    async def spans(
        self, metric: str, since_ns: int, station_ids: Sequence[str] | None = None
    ) -> dict[str, MetricSpan]:
        """First and last value per station: two selector queries, run together."""
        field = _quote_identifier(metric)
        where = f"time >= {int(since_ns)}"
        if station_ids is not None:
            if not station_ids:
                return {}
            where += " AND (" + " OR ".join(f"{_station_is(s)}" for s in station_ids)
            where += ")"
        first, last = await asyncio.gather(
            self.query(f"SELECT first({field}) FROM {TELEMETRY} WHERE {where} GROUP BY station"),
            self.query(f"SELECT last({field}) FROM {TELEMETRY} WHERE {where} GROUP BY station"),
        )
        firsts = {e["tags"]["station"]: e["values"][0] for e in first}
        found: dict[str, MetricSpan] = {}
        for entry in last:
            station_id = entry["tags"]["station"]
            last_ns, last_value = entry["values"][0]
            first_ns, first_value = firsts.get(station_id, (last_ns, last_value))
            found[station_id] = MetricSpan(
                station_id, int(first_ns), float(first_value), int(last_ns), float(last_value)
            )
        return found


_HEALTH_FIELDS = (
    "last_seen_ns", "readings_24h", "expected_24h", "completeness_pct", "missing_by_seq",
    "clock_skew_s", "battery_v", "battery_pct", "rssi_dbm", "snr_db",
)  # fmt: skip
_HEALTH_INTEGERS = frozenset({"last_seen_ns", "readings_24h", "expected_24h", "missing_by_seq"})


def alert_line(record: AlertRecord) -> str:
    """One ``alerts`` line: tags station, kind, rule, level; fields firing, late, text, id."""
    tags = {
        "station": record.station_id,
        "kind": record.kind,
        "rule": record.rule,
        "level": record.level,
    }
    fields: dict[str, bool | str] = {
        "firing": record.firing,
        "late": record.late,
        "text": record.text,
        "event_id": record.event_id,
    }
    return f"{series_key(ALERTS, tags)} {encode_fields(fields)} {record.ts_ns}"


def _health_line(snapshot: StationHealth, tags: Mapping[str, str], ts_ns: int) -> str:
    fields: dict[str, float | int] = {}
    for name in _HEALTH_FIELDS:
        value = getattr(snapshot, name)
        if value is not None:
            fields[name] = int(value) if name in _HEALTH_INTEGERS else float(value)
    return f"{series_key(DEVICE_HEALTH, tags)} {encode_fields(fields)} {ts_ns}"


def _refusal(source: Reading | StoredRejection, message: str) -> StoredRejection:
    if isinstance(source, StoredRejection):
        return source
    return StoredRejection(
        Rejection(
            Reason.STORAGE_REJECTED,
            f"InfluxDB refused the reading: {message[:300]}",
            source.station_id,
        ),
        topic="",
        payload_excerpt=repr(source.values)[:512],
        received_ns=source.ts_ns,
    )
