"""What ``siaga up`` finds behind a port: an MQTT 5 broker, or something that only looks open."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.credentials import hash_password
from ops.probe import probe_mqtt5
from ops.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration


def _serve(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                answer(connection)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def redis_like() -> Iterator[int]:
    def answer(connection: socket.socket) -> None:
        connection.recv(1024)
        connection.sendall(b"-ERR unknown command '\\x10', with args beginning with: \r\n")

    yield from _serve(answer)


@pytest.fixture
def silent() -> Iterator[int]:
    def answer(connection: socket.socket) -> None:
        connection.settimeout(2)
        try:
            connection.recv(1024)
            connection.recv(1024)
        except TimeoutError:
            pass

    yield from _serve(answer)


def test_mosquitto_answers_as_an_mqtt5_broker(broker: MosquittoServer) -> None:
    found = probe_mqtt5("127.0.0.1", broker.port)
    assert found.is_mqtt5
    assert found.accepted


def test_wrong_credentials_are_an_mqtt5_refusal(tmp_path: Path) -> None:
    directory = tmp_path
    passwd = directory / "passwd"
    passwd.write_text(f"reader:{hash_password('right')}\n")
    server = MosquittoServer(
        directory / "broker", allow_anonymous=False, extra_config=[f"password_file {passwd}"]
    )
    with server:
        assert probe_mqtt5("127.0.0.1", server.port, username="reader", password="right").accepted
        refused = probe_mqtt5("127.0.0.1", server.port, username="reader", password="wrong")
        assert refused.is_mqtt5
        assert not refused.accepted
        assert "refused" in refused.detail


def test_a_redis_like_server_is_not_taken_for_a_broker(redis_like: int) -> None:
    found = probe_mqtt5("127.0.0.1", redis_like, timeout_s=1)
    assert not found.is_mqtt5
    assert "not MQTT 5" in found.detail or "not an MQTT 5 broker" in found.detail


def test_a_server_that_never_answers_is_not_a_broker(silent: int) -> None:
    found = probe_mqtt5("127.0.0.1", silent, timeout_s=0.5)
    assert not found.is_mqtt5
    assert "never answered" in found.detail


def test_a_closed_port_says_it_cannot_connect() -> None:
    found = probe_mqtt5("127.0.0.1", free_port(), timeout_s=0.5)
    assert not found.is_mqtt5
    assert "cannot connect" in found.detail
