"""The pure half of two-way channels: callback data, SMS replies, refusals, buttons, errors."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBDeprecationWarning

from alerts.model import Acknowledgement, EventKind, Incident, IncidentState
from alerts.notify.chat import (
    Action,
    Person,
    Press,
    callback_data,
    mute_matchers,
    parse_callback,
    parse_sms_reply,
    refusal,
    status_lines,
)
from alerts.notify.chatstore import code_hash, new_code
from alerts.notify.errors import PermanentDeliveryError, RetryableDeliveryError
from alerts.notify.localtime import WIB, WITA
from alerts.notify.telegram import keyboard, secret_matches, translate
from alerts.pipeline.silence import Matcher, Silence
from devices.levels import Level
from devices.scopes import Scope

S = 1_000_000_000


def incident(incident_id: int = 42, regency: str = "Tulang Bawang") -> Incident:
    return Incident(
        id=incident_id,
        subject="tb-menggala",
        rule="level",
        kind=EventKind.LEVEL,
        state=IncidentState.FIRING,
        severity=Level.AWAS,
        opened_ns=0,
        updated_ns=0,
        labels={"regency": regency, "station": "tb-menggala"},
    )


@given(st.sampled_from(list(Action)), st.integers(min_value=1, max_value=10**18 - 1))
def test_callback_data_round_trips_within_64_bytes(action: Action, incident_id: int) -> None:
    data = callback_data(Press(action, incident_id))
    assert len(data.encode()) <= 64
    assert parse_callback(data) == Press(action, incident_id)


@pytest.mark.parametrize(
    "data",
    [None, "", "a:", "a:0", "a:-1", "x:12", "a:12:3", "a: 12", "A:12", "a:1" + "0" * 70, "a:١٢"],
)
def test_callback_data_siaga_did_not_make_is_nothing(data: str | None) -> None:
    assert parse_callback(data) is None


@pytest.mark.parametrize(
    ("text", "incident_id"),
    [("AKUI 42", 42), ("akui 42", 42), ("Akui #42", 42), (" AKUI  42. ", 42), ("ack 7", 7)],
)
def test_sms_replies_that_acknowledge(text: str, incident_id: int) -> None:
    assert parse_sms_reply(text) == Press(Action.ACK, incident_id)


@pytest.mark.parametrize("text", ["AKUI", "AKUI 0", "OK", "AKUI 42 dan 43", "TIDAK AKUI 42", ""])
def test_sms_replies_that_do_not(text: str) -> None:
    assert parse_sms_reply(text) is None


def test_refusals_say_why() -> None:
    found = incident()
    unlinked = refusal(None, found, 42, "operator")
    assert unlinked is not None
    assert "belum terhubung" in unlinked
    viewer = refusal(Person("tamu", "viewer"), found, 42, "operator")
    assert viewer is not None
    assert "'viewer'" in viewer
    assert "'operator'" in viewer
    elsewhere = refusal(Person("budi", "operator", Scope.of(["Jember"])), found, 42, "operator")
    assert elsewhere is not None
    assert "Tulang Bawang" in elsewhere
    assert "di luar wilayah" in elsewhere
    missing = refusal(Person("budi", "operator"), None, 9, "operator")
    assert missing == "Insiden #9 tidak ada."
    assert refusal(Person("budi", "operator"), found, 42, "operator") is None
    assert refusal(Person("ani", "admin", Scope.of(["Tulang Bawang"])), found, 42, "admin") is None
    assert refusal(Person("budi", "operator"), found, 42, "admin") is not None
    # A province-wide person: the registry's provinces place the incident's regency.
    lampung = Person("sari", "operator", Scope.of(province="Lampung"))
    provinces = {"Tulang Bawang": "Lampung", "Jember": "Jawa Timur"}
    assert refusal(lampung, found, 42, "operator", provinces) is None
    east_java = Person("eko", "operator", Scope.of(province="Jawa Timur"))
    assert "di luar wilayah" in (refusal(east_java, found, 42, "operator", provinces) or "")


def test_status_lines_name_who_and_when_in_the_station_zone() -> None:
    acked = Incident(
        **{
            **{f: getattr(incident(), f) for f in Incident.__dataclass_fields__},
            "acknowledged": Acknowledgement("budi", 7 * 3600 * S + 5 * 60 * S),
            "assignee": "sari",
        }
    )
    assert status_lines([acked], WIB, numbered=False) == [
        "\u2705 Diakui oleh budi, 14:05 WIB",
        "\U0001f477 Ditangani oleh sari",
    ]
    assert (
        status_lines([acked], WITA, numbered=True)[0] == "\u2705 #42 Diakui oleh budi, 15:05 WITA"
    )
    assert status_lines([incident()], WIB, numbered=False) == []
    mute = Silence(
        matchers=mute_matchers(incident()),
        starts_ns=0,
        ends_ns=8 * 3600 * S,
        created_by="sari",
        comment="Bisukan 1 jam",
    )
    other = mute.model_copy(update={"matchers": [Matcher(name="station", value="elsewhere")]})
    lines = status_lines([incident()], WIB, numbered=False, silences=[other, mute], now_ns=S)
    assert lines == ["\U0001f515 Dibisukan sampai 15:00 WIB oleh sari"]
    assert (
        status_lines([incident()], WIB, numbered=False, silences=[mute], now_ns=9 * 3600 * S) == []
    )


def test_buttons_for_one_incident_and_for_several() -> None:
    assert keyboard([5]) == [[("Akui", "a:5"), ("Saya tangani", "c:5")], [("Bisukan 1 jam", "m:5")]]
    assert keyboard([5], acknowledged=[5]) == [[("Saya tangani", "c:5"), ("Bisukan 1 jam", "m:5")]]
    several = keyboard([5, 6, 7, 8, 9])
    assert len(several) == 4
    assert several[1] == [("Akui #6", "a:6"), ("Saya #6", "c:6"), ("Bisukan #6", "m:6")]
    assert keyboard([]) == []


def test_library_errors_are_translated_in_one_place() -> None:
    assert isinstance(translate(NetworkError("Bad Gateway")), RetryableDeliveryError)
    assert isinstance(translate(TimedOut()), RetryableDeliveryError)
    with warnings.catch_warnings():  # the library's own constructor warns about a future type
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        refused = RetryAfter(12)
    flood = translate(refused)
    assert isinstance(flood, RetryableDeliveryError)
    assert flood.retry_after_s == 12
    assert isinstance(translate(BadRequest("chat not found")), PermanentDeliveryError)
    assert isinstance(translate(Forbidden("bot was kicked")), PermanentDeliveryError)


def test_the_webhook_secret_is_compared_whole() -> None:
    secret = SecretStr("s3cret-token")
    assert secret_matches(secret, "s3cret-token")
    assert not secret_matches(secret, "s3cret-toke")
    assert not secret_matches(secret, None)
    assert not secret_matches(None, "anything")
    assert not secret_matches(SecretStr(""), "")


def test_link_codes_are_random_and_stored_as_a_forgiving_hash() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    code = next(iter(codes))
    assert len(code) == 8
    assert code_hash(code) == code_hash(f" {code.lower()[:4]} {code.lower()[4:]} ")
    assert code not in code_hash(code)
