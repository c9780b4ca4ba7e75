"""Flood alerts: rules, the engine, incidents, the notification pipeline and its channels.

The engine (:mod:`alerts.engine`) runs in its own process (``siaga alerts run``) with its own
MQTT session on the stream the ingest workers read; it judges each reading with the rules
(:mod:`alerts.rules`), keeps incidents (:mod:`alerts.incidents`) and hands their changes to the
notification pipeline (:mod:`alerts.pipeline`, :mod:`alerts.notify`).
"""
