"""The API's words for people and its answer to bad input.

Incident summaries come in the reader's language with station names; the acknowledgement
pages are Indonesian first; every route answers bad input with one shape: 422 and the field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.notify.acklink import signed_ack_links
from dashboards.api.accounts import Role
from ingest.storage.memory import MemoryStorage
from tests.apitools import NS, SECRET_KEY, ApiHarness, build, incident, registry
from tests.textcheck import english_in, ids_in, visible_text

KEY = b"test-secret-" + b"x" * 20
REGISTRY = registry()


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    found = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    found.incidents.put(incident(3, "tb-menggala"))
    found.incidents.put(incident(4, "ciliwung-katulampa"))
    return found


async def test_incident_summaries_in_the_readers_language_with_names(harness: ApiHarness) -> None:
    async with harness.client(Role.VIEWER) as client:
        indonesian = (await client.get("/api/v1/incidents")).json()["data"]
        english = (await client.get("/api/v1/incidents", params={"lang": "en"})).json()["data"]
        client.cookies.set("siaga_lang", "en")
        by_cookie = (await client.get("/api/v1/incidents/3")).json()
    menggala = next(i for i in indonesian if i["id"] == 3)
    assert menggala["station_name"] == "Pos Duga Air Menggala"
    assert menggala["detail"].startswith("Pos Duga Air Menggala naik ke Siaga (sebelumnya Waspada)")
    assert next(i for i in english if i["id"] == 3)["detail"].startswith(
        "Pos Duga Air Menggala rose to Siaga (from Waspada)"
    )
    assert by_cookie["detail"].startswith("Pos Duga Air Menggala rose to")
    for item in indonesian:
        texts = [item["detail"], item["station_name"], *(t["detail"] for t in item["transitions"])]
        for text in texts:
            assert ids_in(text, REGISTRY) == [], text
            assert english_in(text, REGISTRY) == [], text


async def test_the_ack_pages_are_indonesian_first_and_name_the_station(harness: ApiHarness) -> None:
    links = signed_ack_links("http://test", SECRET_KEY, clock=lambda: harness.clock.now_ns / NS)
    path = links(3).removeprefix("http://test")
    action = path.replace("/ack?", "/ack-link?")
    async with harness.client() as client:
        page = await client.get(path)
        assert page.status_code == 200
        assert '<html lang="id">' in page.text
        assert 'name="viewport" content="width=device-width' in page.text
        text = visible_text(page.text)
        assert "Konfirmasi" in text
        assert "Nama Anda" in text
        assert ids_in(text, REGISTRY) == [], text
        assert english_in(text, REGISTRY) == [], text
        assert "Pos Duga Air Menggala" in text
        english = await client.get(f"{path}&lang=en")
        assert '<html lang="en">' in english.text
        assert "Acknowledge" in english.text
        assert "Your name" in english.text
        client.cookies.clear()  # ?lang= set the language cookie
        done = await client.post(action, data={"by": "Rina (piket)"})
        assert done.status_code == 200
        assert "Insiden 3 dikonfirmasi oleh Rina (piket)" in done.text
        again = await client.post(action, data={"by": "Budi"})
        assert again.status_code == 409
        assert "sudah dipakai" in again.text
        forged = await client.get(path[:-4] + "0000")
        assert forged.status_code == 404
        assert "Tautan ini tidak berlaku" in forged.text


BODY_ROUTES = [
    ("POST", "/api/v1/incidents/3/ack"),
    ("POST", "/api/v1/incidents/3/assign"),
    ("POST", "/api/v1/silences"),
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/api-keys"),
    ("POST", "/api/v1/login"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("body", [b'{"a":', b'{"a": "\xff\xfe"}', b"\xff"])
async def test_a_body_that_is_not_json_is_a_422_naming_the_body(
    harness: ApiHarness, method: str, path: str, body: bytes
) -> None:
    async with harness.client(Role.ADMIN) as client:
        answer = await client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail[0]["loc"][0] == "body"
    assert set(detail[0]) == {"loc", "msg", "type"}


async def test_validation_errors_name_the_field_and_never_echo_the_input(
    harness: ApiHarness,
) -> None:
    async with harness.client(Role.ADMIN) as client:
        answer = await client.post(
            "/api/v1/users", json={"username": "x", "role": "boss", "password": "hunter2-secret"}
        )
    assert answer.status_code == 422
    assert "hunter2-secret" not in answer.text
    assert all(set(e) == {"loc", "msg", "type"} for e in answer.json()["detail"])


@pytest.mark.parametrize("station", ["a\nb", "a\r\nb", "a\x00b", "x' OR station =~ /./"])
async def test_a_station_that_is_not_an_id_is_a_422(harness: ApiHarness, station: str) -> None:
    async with harness.client(Role.VIEWER) as client:
        answer = await client.get("/api/v1/rejections", params={"station": station})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", "station"]
