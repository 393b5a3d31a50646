"""Plain-text helpers shared by retrieval and evaluation: the one sentence splitter."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_MARKER_AT_END = re.compile(r"(?:^|\n)[ \t]*\(?\d{1,2}[.)]$")  # a list marker the split left behind


def sentences(text: str) -> list[str]:
    """Split after . ! ? A list marker ("1." on its own, or "2." after a line break) opens the
    next sentence instead of ending up as a sentence of its own."""
    out, carry = [], ""
    for piece in _SENTENCE.split(str(text).strip()):
        piece = f"{carry} {piece}".strip()
        marker = _MARKER_AT_END.search(piece)
        carry = marker.group().strip() if marker else ""
        piece = piece[: marker.start()].strip() if marker else piece
        if piece:
            out.append(piece)
    if carry:  # the text ended in "...\n2.": keep it with the sentence before
        out[-1:] = [f"{out[-1]} {carry}" if out else carry]
    return out
