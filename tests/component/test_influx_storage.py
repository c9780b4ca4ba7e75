"""The InfluxDB backend against a scripted HTTP transport: errors, bisection, gzip, auth."""

from __future__ import annotations

import datetime
import email.utils
import gzip
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from devices import Reading, Reason, Rejection
from ingest.batch import Batch, StoredRejection
from ingest.errors import PermanentStorageError, RetryableStorageError
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, judge_response, retry_after_s

Handler = Callable[[httpx.Request], httpx.Response]


def body_lines(request: httpx.Request) -> list[str]:
    raw = request.content
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    return raw.decode().splitlines()


def storage(handler: Handler, **settings: object) -> InfluxStorage:
    return InfluxStorage(
        InfluxSettings(url="http://influx.test:8086", **settings),  # type: ignore[arg-type]
        lambda station_id: {"station": station_id, "regency": "Tulang Bawang", "river": ""},
        transport=httpx.MockTransport(handler),
    )


def readings(count: int) -> list[Reading]:
    return [
        Reading("tb-menggala", 1_700_000_000_000_000_000 + i, {"level": float(i)}, i)
        for i in range(count)
    ]


async def test_lines_are_exact_and_tags_sorted() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["db"] == "siaga"
        assert request.url.params["rp"] == "siaga_1y"
        assert request.url.params["precision"] == "ns"
        seen.extend(body_lines(request))
        return httpx.Response(204)

    rejection = StoredRejection(
        Rejection(Reason.OUT_OF_RANGE, 'level = 9e9 is "high"', "tb-menggala"),
        "siaga/tb-menggala/telemetry",
        '{"a": 1}',
        5,
    )
    async with storage(handler) as store:
        report = await store.write(Batch(readings(1), [rejection]))
    assert report.stored == 2
    assert seen == [
        "telemetry,regency=Tulang\\ Bawang,station=tb-menggala level=0.0,seq=0i "
        "1700000000000000000",
        'rejected,reason=out_of_range,station=tb-menggala topic="siaga/tb-menggala/telemetry",'
        'payload="{\\"a\\": 1}",detail="level = 9e9 is \\"high\\"" 5',
    ]


async def test_a_bad_line_is_isolated_and_stored_as_a_rejection() -> None:
    stored: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        lines = body_lines(request)
        bad = [line for line in lines if "level=13.0" in line]
        good = [line for line in lines if line not in bad]
        stored.update(good)  # InfluxDB 1.x stores the good lines of a partial write
        if bad:
            return httpx.Response(400, json={"error": "partial write: field type conflict"})
        return httpx.Response(204)

    async with storage(handler) as store:
        report = await store.write(Batch(readings(40), []))
    assert report.refused == 1
    assert report.stored == 39
    telemetry = {line for line in stored if line.startswith("telemetry")}
    assert len(telemetry) == 39
    refusals = [line for line in stored if line.startswith("rejected")]
    assert len(refusals) == 1
    assert "reason=storage_rejected" in refusals[0]
    assert "field type conflict" in refusals[0]


async def test_server_errors_and_unreachable_are_retryable() -> None:
    async with storage(lambda request: httpx.Response(503, text="overloaded")) as store:
        with pytest.raises(RetryableStorageError, match="503"):
            await store.write(Batch(readings(1), []))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with storage(refuse) as store:
        with pytest.raises(RetryableStorageError, match="unreachable"):
            await store.write(Batch(readings(1), []))


async def test_bad_credentials_are_permanent() -> None:
    async with storage(lambda request: httpx.Response(401, text="authorization failed")) as store:
        with pytest.raises(PermanentStorageError) as caught:
            await store.write(Batch(readings(1), []))
    assert caught.value.status == 401


async def test_large_bodies_are_gzipped() -> None:
    encodings: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        encodings.append(request.headers.get("content-encoding"))
        assert len(body_lines(request)) in {1, 500}
        return httpx.Response(204)

    async with storage(handler) as store:
        await store.write(Batch(readings(500), []))
        await store.write(Batch(readings(1), []))
    assert encodings == ["gzip", None]


async def test_token_and_basic_auth_headers() -> None:
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["authorization"])
        return httpx.Response(204)

    async with storage(handler, token=SecretStr("t0ken")) as store:
        await store.write(Batch(readings(1), []))
    async with storage(handler, username="siaga", password=SecretStr("pw")) as store:
        await store.write(Batch(readings(1), []))
    assert headers[0] == "Token t0ken"
    assert headers[1].startswith("Basic ")


async def test_missing_database_is_created_and_the_write_repeated() -> None:
    created = False
    statements: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal created
        if request.url.path == "/query":
            statements.append(request.url.params["q"])
            if request.url.params["q"].startswith("CREATE DATABASE"):
                created = True
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        if not created:
            return httpx.Response(404, json={"error": 'database not found: "siaga"'})
        return httpx.Response(204)

    async with storage(handler) as store:
        report = await store.write(Batch(readings(3), []))
    assert report.stored == 3
    assert statements[0] == 'CREATE DATABASE "siaga"'
    assert any(
        s.startswith('CREATE RETENTION POLICY "siaga_1y" ON "siaga" DURATION 365d')
        for s in statements
    )


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_carried_to_the_worker(status: int) -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="slow down", headers={"Retry-After": "12"})

    async with storage(busy) as store:
        with pytest.raises(RetryableStorageError) as caught:
            await store.write(Batch(readings(1), []))
    assert caught.value.retry_after_s == 12.0


def test_retry_after_as_an_http_date() -> None:
    soon = email.utils.format_datetime(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=90), usegmt=True
    )
    wait_s = retry_after_s(soon)
    assert wait_s is not None
    assert 85 <= wait_s <= 90
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (401, True), (403, True), (404, True), (429, False), (500, False)],
)
def test_one_function_judges_every_status(status: int, permanent: bool) -> None:
    error = judge_response(status, "text", {})
    assert isinstance(error, PermanentStorageError) is permanent
    assert isinstance(error, RetryableStorageError) is not permanent


async def test_a_refused_query_is_judged_like_a_refused_write() -> None:
    async with storage(lambda request: httpx.Response(503, text="down")) as store:
        with pytest.raises(RetryableStorageError):
            await store.query("SHOW DATABASES")
