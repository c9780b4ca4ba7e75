"""Checks on everything people read: station names, never ids; Indonesian without English.

The English words are taken from the English templates themselves (every word of their text
that no Indonesian template uses), so a phrase added to the English templates is checked too.
"""

from __future__ import annotations

import re
from functools import cache

from jinja2 import Environment

from alerts.notify.message import TEMPLATES
from devices.stations import StationRegistry

_WORD = re.compile(r"[A-Za-z]+")


def _template_tokens(language: str) -> tuple[set[str], set[str]]:
    """The words of a language's templates: in their text, and in their string constants."""
    env = Environment()
    text: set[str] = set()
    constants: set[str] = set()
    for path in sorted((TEMPLATES / language).glob("*.j2")):
        for _line, kind, value in env.lex(path.read_text(encoding="utf-8")):
            if kind == "data":
                text |= {w.lower() for w in _WORD.findall(value)}
            elif kind == "string":
                constants.add(value)
    return text, constants


def _words(text: set[str], constants: set[str], shared: set[str]) -> set[str]:
    # Constants both languages share ("upstream", "AWAS") are code, not words for people.
    return text | {w.lower() for c in constants - shared for w in _WORD.findall(c)}


@cache
def english_words() -> frozenset[str]:
    """Words of the English templates that no Indonesian template uses (3 letters or more)."""
    en_text, en_constants = _template_tokens("en")
    id_text, id_constants = _template_tokens("id")
    shared = en_constants & id_constants
    english = _words(en_text, en_constants, shared) - _words(id_text, id_constants, shared)
    return frozenset(w for w in english if len(w) >= 3)


def _without_names(text: str, registry: StationRegistry) -> str:
    for station in registry.stations():
        for name in (station.name, station.river or "", station.regency, station.district or ""):
            if name:
                text = text.replace(name, " ")
    return text


def english_in(text: str, registry: StationRegistry) -> list[str]:
    """The English template words in an Indonesian ``text`` (names of places left out)."""
    found = {w.lower() for w in _WORD.findall(_without_names(text, registry))}
    return sorted(found & english_words())


def ids_in(text: str, registry: StationRegistry) -> list[str]:
    """Station ids ``text`` shows where the station has a name of its own."""
    return [
        s.id
        for s in registry.stations()
        if s.name != s.id and re.search(rf"(?<![\w-]){re.escape(s.id)}(?![\w-])", text)
    ]


def visible_text(html: str) -> str:
    """The text of an HTML page as people see it (tags, scripts and styles left out)."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"<[^>]+>", " ", html)
