"""The CAP 1.2 documents as an Atom feed (RFC 4287), the form alert hubs and aggregators read.

Pure: documents in, XML out. Each entry links its CAP document (``application/cap+xml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree as ET

from alerts.notify.cap import CapDocument

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="seconds")


def atom_feed(
    documents: Sequence[CapDocument], *, base_url: str, feed_id: str, now_ns: int
) -> bytes:
    """An Atom feed of ``documents`` (newest first), each linking ``{base}/api/v1/cap/{id}.xml``."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    base = base_url.rstrip("/")
    child(feed, "id", feed_id)
    child(feed, "title", "Siaga: peringatan banjir (CAP 1.2)")
    updated = max((d.sent_ns for d in documents), default=now_ns)
    child(feed, "updated", _rfc3339(updated))
    child(feed, "link", rel="self", href=f"{base}/api/v1/cap.atom")
    author = child(feed, "author")
    child(author, "name", "Siaga")
    for document in documents:
        entry = child(feed, "entry")
        child(entry, "id", f"urn:siaga:cap:{document.identifier}")
        child(entry, "title", document.headline or document.identifier)
        child(entry, "updated", _rfc3339(document.sent_ns))
        child(
            entry,
            "link",
            rel="alternate",
            type=CAP_MEDIA_TYPE,
            href=f"{base}/api/v1/cap/{quote(document.identifier, safe='')}.xml",
        )
        child(entry, "summary", document.headline or document.identifier)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
