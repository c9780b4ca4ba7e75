"""Siaga's own MQTT 5 subscriber: the packet codec (no I/O) and the asyncio client."""
