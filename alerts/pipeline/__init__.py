"""The notification pipeline's pure stages: route → group → inhibit → silence → dedup → escalate.

Every stage is a function (or a small state machine driven by an injected clock) over values;
none does I/O. The dispatcher in :mod:`alerts.notify.dispatcher` runs them in order
(:attr:`~alerts.notify.dispatcher.Dispatcher.pipeline`) and moves data between them.
"""

from alerts.pipeline.model import Notice, labels_of

__all__ = ["Notice", "labels_of"]
