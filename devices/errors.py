"""The root of Siaga's exception tree, here because every package may import ``devices``.

The whole tree is drawn in :mod:`ingest.errors`, which re-exports these classes. They live in
``devices`` so that ``devices`` and ``simulators`` (which must not import ``ingest``) can root
their own errors in the same tree.
"""

from __future__ import annotations


class SiagaError(Exception):
    """Base of every error Siaga raises on purpose."""


class ConfigError(SiagaError):
    """The configuration is unusable; the message names the key and the problem."""


class InputError(SiagaError, ValueError):
    """One input is unusable, never a crash: a message's content ends as a stored, counted
    rejection; a request's (an acknowledgement link, an account change) as a 4xx answer.

    Also a ValueError, as the parsers it is raised from (json hooks, converters) expect.
    """
