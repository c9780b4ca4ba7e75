"""Alert rules, incident state, routing and notifiers (built in a later issue).

The worker's observer hook (:data:`ingest.worker.Observer`) is where evaluation plugs in.
"""
