"""Notifications: messages, CAP documents and the channels that carry them (the only I/O)."""
