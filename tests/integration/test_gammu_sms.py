"""SMS through Gammu's dummy driver (a directory stands in for the modem; no hardware): sending
split correctly, "AKUI <id>" replies exactly once, and the fallback from Telegram to SMS end to
end while the Telegram API is unreachable."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gammu
import pytest

from alerts.notify.gammu_sms import GammuModem, SmsInbox, sms_text
from alerts.notify.sms import segments
from alerts.settings import SmsSettings
from tests.alerting import T0
from tests.helpers import eventually
from tests.integration.notify_rig import BUDI, REGISTRY, notifier_rig

pytestmark = pytest.mark.integration

BUDI_NUMBER = "+6281234567890"
TAMU_NUMBER = "+6281200000002"


class Network:
    """The cell network's side: delivers SMS into the dummy modem's inbox."""

    def __init__(self, directory: Path) -> None:
        self.machine = gammu.StateMachine()
        self.machine.SetConfig(
            0, {"Device": str(directory), "Connection": "none", "Model": "dummy"}
        )
        self.machine.Init()

    def deliver(self, number: str, text: str, at: datetime.datetime) -> None:
        self.machine.AddSMS(
            {
                "Folder": 1,
                "State": "UnRead",
                "Number": number,
                "Text": text,
                "Coding": "Default",
                "DateTime": at,
                "SMSC": {"Location": 1},
                "Type": "Deliver",
            }
        )

    def waiting(self) -> int:
        return int(self.machine.GetSMSStatus()["SIMUsed"])


@pytest.fixture
def modem_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "modem"
    directory.mkdir()
    return directory


@pytest.fixture
def modem(modem_dir: Path) -> Iterator[GammuModem]:
    made = GammuModem(str(modem_dir), connection="none", model="dummy")
    yield made
    made.close()


async def test_long_and_unicode_texts_go_as_concatenated_sms_in_the_parts_counted(
    modem: GammuModem,
) -> None:
    short = sms_text("BANJIR Tulang Bawang: Menggala Awas 310cm 14:05 WIB. Ack: x", [42])
    assert segments(short) == 1
    assert await modem.send(BUDI_NUMBER, short) == 1
    long = short + " Pantau muka air tiap 15 menit; siapkan perahu dan posko di Menggala." * 2
    assert segments(long) == 2
    assert await modem.send(BUDI_NUMBER, long) == 2
    wide = "Peringatan \u26a0 " + "banjir " * 12
    assert segments(wide) == 2  # one non-GSM character: UCS-2, 67 a part
    assert await modem.send(BUDI_NUMBER, wide) == 2
    assert modem.parts_sent == 5


async def test_a_reply_acknowledges_once_even_when_the_sms_comes_twice(
    tmp_path: Path, modem_dir: Path, modem: GammuModem
) -> None:
    network = Network(modem_dir)
    async with notifier_rig(tmp_path) as rig:
        await rig.start()
        incident_id = await rig.flood()
        await rig.chats.link("sms", BUDI_NUMBER, "budi", T0)
        await rig.chats.link("sms", TAMU_NUMBER, "tamu", T0)
        inbox = SmsInbox(
            modem,
            rig.chats,
            rig.incidents,
            rig.notify,
            settings=SmsSettings(enabled=True),
            registry=lambda: REGISTRY,
        )
        sent_at = datetime.datetime(2026, 1, 1, 7, 30, tzinfo=datetime.UTC)
        network.deliver("081234567890", f"akui {incident_id}", sent_at)
        network.deliver("+6285799999999", f"AKUI {incident_id}", sent_at)  # nobody we know
        network.deliver(TAMU_NUMBER, f"AKUI {incident_id}", sent_at)  # a viewer
        network.deliver(BUDI_NUMBER, "ok siap", sent_at)
        assert await inbox.step() == 4
        assert network.waiting() == 0
        incident = await rig.incidents.get(incident_id)
        assert incident is not None
        assert incident.acknowledged is not None
        assert (incident.acknowledged.by, incident.acknowledged.comment) == ("budi", "via sms")
        assert inbox.counts == {
            "acted": 1,
            "unknown_number": 1,
            "refused": 1,
            "not_understood": 1,
        }
        assert modem.parts_sent == 3  # answers to budi (twice) and tamu; none to the stranger

        # The network delivers budi's SMS again (or the modem kept it through a crash).
        network.deliver("+62 812-3456-7890", f"akui {incident_id}", sent_at)
        assert await inbox.step() == 0
        assert inbox.counts["replayed"] == 1
        assert modem.parts_sent == 3
        again = await rig.incidents.get(incident_id)
        assert again is not None
        assert again.acknowledged == incident.acknowledged

        # A new SMS (another time) is a new answer, and the first acknowledgement stands.
        network.deliver(BUDI_NUMBER, f"AKUI {incident_id}", sent_at + datetime.timedelta(minutes=1))
        assert await inbox.step() == 1
        assert inbox.counts["repeated"] == 1
        assert modem.parts_sent == 4


async def test_a_notice_falls_back_to_sms_while_telegram_is_down_and_the_reply_acknowledges(
    tmp_path: Path, modem_dir: Path, modem: GammuModem
) -> None:
    policy = f"""
recipients:
  - name: budi
    channels:
      - {{name: telegram, type: telegram, url: piket-tb}}
      - {{name: sms, type: sms, url: "{BUDI_NUMBER}"}}
    fallback: {{channel: sms, after_min: 0.02}}
groups: [{{name: piket, members: [budi]}}]
default_groups: [piket]
group_wait_s: 0
"""
    network = Network(modem_dir)
    async with notifier_rig(
        tmp_path,
        policy,
        modem=modem,
        sms={"inbox_poll_s": 0.1},
        notify={"fallback_check_s": 0.1},
    ) as rig:
        await rig.chats.link("sms", BUDI_NUMBER, "budi", T0)
        await rig.link(BUDI, "budi")
        await rig.start()
        await rig.peer.stop()  # the regency's internet link is down
        incident_id = await rig.flood()

        async def by_channel() -> dict[str, Any]:
            return {d.channel: d for d in await rig.notify.deliveries()}

        async def fell_back() -> bool:
            found = await by_channel()
            return "sms" in found and found["sms"].status == "delivered"

        await eventually(fell_back, 15, "the SMS fallback delivered")
        found = await by_channel()
        assert found["telegram"].status in {"pending", "sending"}
        assert found["telegram"].attempts >= 1
        assert found["sms"].payload["fallback_of"] == found["telegram"].id
        assert modem.parts_sent == 1
        assert rig.companions is not None
        watch = rig.companions.notifier.fallback
        assert watch is not None
        assert watch.fallen_back == 1

        network.deliver(BUDI_NUMBER, f"AKUI {incident_id}", datetime.datetime.now(datetime.UTC))

        async def acknowledged() -> bool:
            incident = await rig.incidents.get(incident_id)
            return incident is not None and incident.acknowledged is not None

        await eventually(acknowledged, 10, "the SMS reply acknowledging")
        incident = await rig.incidents.get(incident_id)
        assert incident is not None
        assert incident.acknowledged is not None
        assert incident.acknowledged.by == "budi"

        # The link comes back: the Telegram post arrives once, already saying who acknowledged
        # (no "Akui" left); the SMS is not sent again.
        await rig.peer.start()
        post = await rig.post()
        assert "Diakui oleh budi" in post.text
        labels = [b["text"] for row in post.keyboard for b in row]
        assert labels == ["Saya tangani", "Bisukan 1 jam"]
        press = rig.peer.press(post, "Saya tangani", BUDI)
        await eventually(lambda: bool(rig.peer.answers_to(press)), 10, "answered")
        assert "ditangani oleh budi" in rig.peer.answers_to(press)[0]["text"]
        assert modem.parts_sent == 2  # the fallback and the answer to the reply
        assert len(await rig.notify.deliveries()) == 2
