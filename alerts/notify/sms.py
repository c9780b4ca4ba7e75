"""How much of a text fits one SMS: 160 GSM-7 septets, or 70 UCS-2 characters otherwise."""

from __future__ import annotations

# GSM 03.38 basic character set, and the extension table (each costs two septets).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SMS_GSM7 = 160
SMS_UCS2 = 70


def gsm7_septets(text: str) -> int | None:
    """The septets ``text`` takes in GSM-7, or None when it needs UCS-2."""
    count = 0
    for char in text:
        if char in _GSM7_BASIC:
            count += 1
        elif char in _GSM7_EXTENDED:
            count += 2
        else:
            return None
    return count


def fits_one_sms(text: str) -> bool:
    """Whether ``text`` is one SMS segment."""
    septets = gsm7_septets(text)
    if septets is None:
        return len(text) <= SMS_UCS2
    return septets <= SMS_GSM7


def to_gsm7(text: str) -> str:
    """Replace the few characters our messages may carry that GSM-7 lacks."""
    table = {
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2192": ">",
        "\u2265": ">=",
        "\u2264": "<=",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
    }
    return "".join(table.get(c, c) for c in text)


def clip(text: str) -> str:
    """Cut ``text`` to one GSM-7 SMS (with an ellipsis of dots), after :func:`to_gsm7`."""
    text = to_gsm7(text)
    if fits_one_sms(text):
        return text
    text = "".join(c if gsm7_septets(c) is not None else "?" for c in text)
    while not fits_one_sms(text + "..."):
        text = text[:-1]
    return text.rstrip() + "..."


SMS_GSM7_PART = 153  # 160 less the 7 septets of the concatenation header
SMS_UCS2_PART = 67


def segments(text: str) -> int:
    """How many SMS ``text`` takes: 1 when it fits one, else the parts of a concatenated SMS
    (153 GSM-7 septets or 67 UCS-2 units each; an extension character is never split)."""
    septets = gsm7_septets(text)
    if septets is None:
        units = len(text.encode("utf-16-le")) // 2
        return 1 if units <= SMS_UCS2 else -(-units // SMS_UCS2_PART)
    if septets <= SMS_GSM7:
        return 1
    parts, used = 1, 0
    for char in text:
        size = 2 if char in _GSM7_EXTENDED else 1
        if used + size > SMS_GSM7_PART:
            parts, used = parts + 1, 0
        used += size
    return parts
