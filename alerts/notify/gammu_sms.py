"""SMS through a local GSM modem (Gammu): notices out, "AKUI <id>" replies in.

Cell networks often stay up when a regency's internet link fails, so this channel needs no
internet at all: a USB modem on the notifier's machine, driven by Gammu (python-gammu).

- :class:`Modem` is the narrow interface: :class:`GammuModem` is the real one (every Gammu call
  on one thread of its own: a state machine is not thread-safe), :class:`MemoryModem` the
  in-memory one. Gammu's own ``dummy`` driver (a directory instead of a modem) runs the real
  one in tests.
- :class:`SmsChannel` sends the short form with the reply hint ("Balas AKUI 42"); a text over
  160 GSM-7 characters (70 UCS-2) goes as a concatenated SMS that Gammu's encoder splits
  (``alerts.notify.sms.segments`` says into how many parts).
- :class:`SmsInbox` reads replies: "AKUI 42" from a number linked to a user acknowledges in
  that user's name, exactly once (a digest of number, time and text is stored as handled; the
  incident store keeps the first acknowledgement), then the SMS is deleted from the modem and
  the sender gets a short answer. Unknown numbers get no answer (no cost for spam).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from alerts.notify.channels import DELIVERED, Outgoing, SendResult
from alerts.notify.chat import IncidentActions, SilenceBook, parse_sms_reply
from alerts.notify.chatstore import ChatStore, incident_ids
from alerts.notify.errors import PermanentDeliveryError, RetryableDeliveryError
from alerts.notify.responder import Responder
from alerts.notify.sms import SMS_GSM7, clip, gsm7_septets, to_gsm7
from alerts.settings import SmsSettings
from devices.stations import StationRegistry

log = logging.getLogger(__name__)

CHANNEL = "sms"
MUTE_S = 3600.0  # replies only acknowledge; a mute by SMS is not offered
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class IncomingSms:
    """One received SMS (the parts of a concatenated one joined).

    Attributes:
        number: The sender as the network gave it.
        text: The whole text.
        sent: When the sender's phone sent it (the network's time stamp).
        locations: Where the parts sit in the modem, to delete them.
    """

    number: str
    text: str
    sent: datetime | None
    locations: tuple[tuple[int, int], ...] = ()

    @property
    def key(self) -> str:
        """What makes this SMS itself: a redelivery or a second read has the same key."""
        stamp = self.sent.isoformat() if self.sent else ""
        return hashlib.sha256(f"{e164(self.number)}|{stamp}|{self.text}".encode()).hexdigest()[:64]


class Modem(Protocol):
    """A GSM modem."""

    async def send(self, number: str, text: str) -> int:
        """Send one SMS (concatenated when long); how many parts went."""
        ...

    async def incoming(self) -> list[IncomingSms]:
        """The received SMS waiting in the modem."""
        ...

    async def delete(self, sms: IncomingSms) -> None:
        """Remove a received SMS from the modem."""
        ...


def e164(number: str, country: str = "62") -> str:
    """``+62812…`` from ``0812…``, ``62812…`` or ``+62 812-…`` (Indonesia by default)."""
    digits = re.sub(r"[\s().-]", "", number)
    if digits.startswith("+"):
        return digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return f"+{country}{digits[1:]}"
    if digits.startswith(country):
        return "+" + digits
    return digits


def sms_text(short: str, incidents: Sequence[int]) -> str:
    """The SMS: the short form, its "Ack: …" tail replaced by how to answer by SMS."""
    head, marker, _ = short.rpartition(" Ack: ")
    body = head if marker else short
    if incidents:
        hint = f"Balas AKUI {incidents[0]}"
        if len(incidents) > 1:
            hint = "Balas AKUI <no>: " + ",".join(str(i) for i in incidents)
        body = f"{body.rstrip('. ')}. {hint}"
    return to_gsm7(body)


def answer_text(text: str) -> str:
    """A reply that fits one SMS."""
    return clip(text)


class GammuModem:
    """A modem through python-gammu; every call on one thread of its own.

    Args:
        device: ``/dev/ttyUSB0``, or a directory for Gammu's ``dummy`` model.
        connection: Gammu's connection (``at``, ``at115200``, …; ``none`` for ``dummy``).
        model: Gammu's model (empty: autodetect; ``dummy`` in tests).
    """

    def __init__(self, device: str, connection: str = "at", model: str = "") -> None:
        self._config = {"Device": device, "Connection": connection, "Model": model}
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gammu")
        self._machine: Any = None
        self._closed = False
        self.parts_sent = 0

    def __repr__(self) -> str:
        return f"GammuModem({self._config['Device']!r})"

    async def _call(self, function: Callable[[], _T]) -> _T:
        import gammu  # noqa: PLC0415 - the C library is needed only where a modem is

        def guarded() -> _T:
            if self._machine is None:
                machine = gammu.StateMachine()
                machine.SetConfig(0, self._config)
                machine.Init()
                self._machine = machine
            return function()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, guarded)
        except gammu.GSMError as exc:
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            text = f"modem: {detail.get('Text', exc)} ({detail.get('Where', '?')})"
            if isinstance(exc, gammu.ERR_INVALIDDATA | gammu.ERR_NOTSUPPORTED):
                raise PermanentDeliveryError(text) from None
            self._machine = None  # a modem that failed is opened afresh next time
            raise RetryableDeliveryError(text) from None

    async def send(self, number: str, text: str) -> int:
        """See :meth:`Modem.send`."""
        import gammu  # noqa: PLC0415

        def run() -> int:
            unicode = gsm7_septets(text) is None
            parts = gammu.EncodeSMS(
                {
                    "Class": -1,
                    "Unicode": unicode,
                    "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": text}],
                }
            )
            for part in parts:
                part["SMSC"] = {"Location": 1}
                part["Number"] = number
                self._machine.SendSMS(part)
            return len(parts)

        sent = await self._call(run)
        self.parts_sent += sent
        return sent

    async def incoming(self) -> list[IncomingSms]:
        """See :meth:`Modem.incoming`."""
        import gammu  # noqa: PLC0415

        def run() -> list[IncomingSms]:
            found: list[list[dict[str, Any]]] = []
            location: int | None = None
            while True:
                try:
                    if location is None:
                        batch = self._machine.GetNextSMS(Folder=0, Start=True)
                    else:
                        batch = self._machine.GetNextSMS(Folder=0, Location=location)
                except gammu.ERR_EMPTY:
                    break
                location = int(batch[0]["Location"])
                if batch[0].get("Type") == "Deliver":
                    found.append(batch)
            messages = []
            for linked in gammu.LinkSMS(found):
                decoded = gammu.DecodeSMS(linked)
                text = (
                    "".join(str(e.get("Buffer") or "") for e in decoded["Entries"])
                    if decoded
                    else "".join(str(part["Text"]) for part in linked)
                )
                messages.append(
                    IncomingSms(
                        number=str(linked[0]["Number"]),
                        text=text,
                        sent=linked[0].get("DateTime"),
                        locations=tuple((int(p["Folder"]), int(p["Location"])) for p in linked),
                    )
                )
            return messages

        return await self._call(run)

    async def delete(self, sms: IncomingSms) -> None:
        """See :meth:`Modem.delete`."""
        import gammu  # noqa: PLC0415

        def run() -> None:
            for folder, location in sms.locations:
                with contextlib.suppress(gammu.ERR_EMPTY):  # gone already
                    self._machine.DeleteSMS(Folder=folder, Location=location)

        await self._call(run)

    def close(self) -> None:
        """Release the modem."""

        def run() -> None:
            if self._machine is not None:
                try:
                    self._machine.Terminate()
                finally:
                    self._machine = None

        if self._closed:
            return
        self._closed = True
        self._thread.submit(run).result()
        self._thread.shutdown()


@dataclass
class MemoryModem:
    """A modem in memory: what was sent, what waits; can be told to fail."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    inbox: list[IncomingSms] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)

    async def send(self, number: str, text: str) -> int:
        """See :meth:`Modem.send`."""
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append((number, text))
        return 1 if len(text) <= SMS_GSM7 else 2

    async def incoming(self) -> list[IncomingSms]:
        """See :meth:`Modem.incoming`."""
        return list(self.inbox)

    async def delete(self, sms: IncomingSms) -> None:
        """See :meth:`Modem.delete`."""
        self.inbox = [m for m in self.inbox if m is not sms]


class SmsChannel:
    """Sends the short form with the reply hint to one number; a channel of the sender."""

    pages = True

    def __init__(self, name: str, number: str, modem: Modem) -> None:
        self.name = name
        self.number = e164(number)
        self._modem = modem

    async def send(self, message: Outgoing) -> SendResult:
        """Send; the modem's failures are already delivery errors."""
        alerts = [
            a
            for a in message.payload.get("alerts", [])
            if isinstance(a, dict) and a.get("firing") and a.get("state") == "firing"
        ]
        await self._modem.send(self.number, sms_text(message.short, incident_ids(alerts)))
        return DELIVERED


class SmsInbox(Responder):
    """Reads replies and acts on them (see the module doc).

    Args:
        modem: The modem.
        store: Numbers → users, handled SMS.
        incidents: The incident store.
        silences: The notification store.
        settings: The ``sms`` settings.
        registry: Stations (each incident's time zone).
        clock: Nanoseconds since the epoch.
        is_leader: Only the leader reads the modem.
    """

    def __init__(
        self,
        modem: Modem,
        store: ChatStore,
        incidents: IncidentActions,
        silences: SilenceBook,
        *,
        settings: SmsSettings,
        registry: Callable[[], StationRegistry],
        clock: Callable[[], int] = time.time_ns,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(
            store, incidents, silences, registry=registry, clock=clock, is_leader=is_leader
        )
        self._modem = modem
        self._settings = settings

    async def step(self) -> int:
        """Read the modem once and handle what waits; how many SMS were handled."""
        handled = 0
        for sms in await self._modem.incoming():
            if await self._store.handled(CHANNEL, sms.key):
                self.counts["replayed"] += 1
            else:
                try:
                    await self._handle(sms)
                except Exception:  # one SMS never stops the others; it is read again next time
                    self.counts["failed"] += 1
                    log.exception("an SMS from %s… could not be handled", sms.number[:6])
                    continue
                await self._store.mark_handled(CHANNEL, sms.key, self._clock())
                handled += 1
            await self._modem.delete(sms)
        return handled

    async def _handle(self, sms: IncomingSms) -> None:
        number = e164(sms.number)
        person = await self._store.person(CHANNEL, number)
        if person is None:
            self.counts["unknown_number"] += 1
            return
        press = parse_sms_reply(sms.text)
        if press is None:
            self.counts["not_understood"] += 1
            await self._reply(number, "Format balasan: AKUI <nomor insiden>, misalnya AKUI 42.")
            return
        outcome = await self.carry_out(
            press,
            person,
            via=CHANNEL,
            least_role=self._settings.act_role,
            silence_s=MUTE_S,
        )
        await self._reply(number, outcome.answer)

    async def _reply(self, number: str, text: str) -> None:
        try:
            await self._modem.send(number, answer_text(text))
        except (RetryableDeliveryError, PermanentDeliveryError) as exc:
            # The act stands; only its confirmation is lost (the person sees it in Telegram/UI).
            self.counts["reply_failed"] += 1
            log.warning("SMS answer to %s… not sent: %s", number[:6], exc)

    async def run(self) -> None:
        """Read every ``inbox_poll_s`` while leading, until cancelled."""
        while True:
            if self._is_leader():
                try:
                    await self.step()
                except RetryableDeliveryError as exc:
                    self.counts["read_failed"] += 1
                    log.warning("reading SMS failed, trying again: %s", exc)
            await asyncio.sleep(self._settings.inbox_poll_s)
