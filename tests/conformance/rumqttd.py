"""rumqttd, the broker inside the PyPI package ``iotcore``: a second real MQTT 5 broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from iotcore import Broker

from ops.servers import free_port


@contextmanager
def rumqttd(directory: Path) -> Iterator[int]:
    """Run rumqttd with one MQTT 5 listener on 127.0.0.1 (config in ``directory``); yields its port.

    Its ``max_inflight_count`` does not bound deliveries to a subscriber (measured: 100
    messages reached a subscriber at once with it set to 1), so the one-in-flight broker of
    issue 12 is played by the scripted broker instead.
    """
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "rumqttd.toml"
    config.write_text(
        f"""id = 0

[router]
id = 0
max_connections = 100
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v5.1]
name = "v5-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v5.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 131072
    max_inflight_count = 100
"""
    )
    broker = Broker(config_path=str(config)).start()
    try:
        yield port
    finally:
        broker.stop()
