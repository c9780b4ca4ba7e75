"""The data plane: MQTT source, validation, batching, storage backends, the spool, the worker."""
