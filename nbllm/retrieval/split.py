"""Split documents into overlapping chunks on the coarsest boundary that fits.

Recursive separators: paragraphs, then sentences, then words. A chunk never ends
mid-word (a single word longer than the chunk size becomes a chunk of its own). Sizes count
the embedder's tokens (or characters). Every chunk is a contiguous span of its document, so
its offset is exact; its id is a hash of source, page and offset.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError

SEPARATORS = [re.compile(r"\n[ \t]*\n\s*"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+")]
WORD = re.compile(r"\S+")


@dataclass
class Chunk:
    id: str
    text: str
    source: str
    page: int | None
    offset: int  # character offset of the chunk in its document (or PDF page / record)
    meta: dict = field(default_factory=dict)


def chunk_id(source: str, page: int | None, offset: int) -> str:
    return hashlib.sha1(f"{source}\x00{page}\x00{offset}".encode()).hexdigest()[:20]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _pieces(text: str, start: int, end: int, size: int, length, level: int = 0) -> list[tuple[int, int, int]]:
    """(start, end, length) spans, each within `size` unless it is a single word."""
    n = length(text[start:end])
    if n <= size or level == len(SEPARATORS):
        return [(start, end, n)]
    cuts = [m.end() for m in SEPARATORS[level].finditer(text, start, end) if start < m.end() < end]
    if not cuts:
        return _pieces(text, start, end, size, length, level + 1)
    out = []
    for s, e in zip([start] + cuts, cuts + [end]):
        out += _pieces(text, s, e, size, length, level + 1)
    return out


def split_text(text: str, size: int, overlap: int, length: Callable[[str], int]) -> list[tuple[int, int]]:
    """(start, end) character spans of the chunks of `text`."""
    pieces = _pieces(text, 0, len(text), size, length)
    spans, cur, cur_len, start = [], [], 0, None
    for piece in pieces:
        if cur and cur_len + piece[2] > size:
            spans.append((start, cur[-1][1]))
            start, cur_len = _overlap_start(text, start, cur[-1][1], overlap, length), 0
            cur = []
            if start is not None and start < piece[0]:
                cur_len = length(text[start : piece[0]])
                if cur_len + piece[2] > size:  # the overlap and this piece do not fit together
                    start, cur_len = None, 0
        if start is None:
            start = piece[0]
        cur.append(piece)
        cur_len += piece[2]
    if cur:
        spans.append((start, cur[-1][1]))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s]


def _overlap_start(text: str, start: int, end: int, overlap: int, length) -> int | None:
    """Where the next chunk starts: the earliest word start near the end of the previous chunk
    whose tail stays within `overlap` (None: no overlap)."""
    if overlap <= 0:
        return None
    best = None
    for m in reversed(list(WORD.finditer(text, start, end))):
        if m.start() == start or length(text[m.start() : end]) > overlap:
            break
        best = m.start()
    return best


def _strip(text: str, a: int, b: int):
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return (a, b) if b > a else None


def check_sizes(chunk_size: int, overlap: int, limit: int | None = None, unit: str = "tokens") -> None:
    if chunk_size <= 0:
        raise ConfigError(f"--chunk-size must be > 0 (got {chunk_size})")
    if overlap < 0 or overlap >= chunk_size:
        raise ConfigError(f"--overlap must be >= 0 and smaller than --chunk-size {chunk_size} (got {overlap})")
    if unit not in ("tokens", "chars"):
        raise ConfigError(f"--unit must be tokens or chars (got {unit!r})")
    if limit and unit == "tokens" and chunk_size > limit:
        raise ConfigError(
            f"--chunk-size {chunk_size} is longer than the embedder's input limit of {limit} tokens, "
            f"so chunks would be cut; use --chunk-size {limit} or less"
        )


def split_documents(documents, chunk_size: int, overlap: int, length: Callable[[str], int]) -> list[Chunk]:
    chunks = []
    for doc in documents:
        for a, b in split_text(doc.text, chunk_size, overlap, length):
            chunks.append(Chunk(chunk_id(doc.source, doc.page, a), doc.text[a:b], doc.source, doc.page, a, doc.meta))
    return chunks


STRATEGIES = ("direct", "sentence-window", "auto-merging")


def check_strategy(strategy: str, window: int = 2, chunk_size: int = 1, child_size: int | None = None) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown --strategy {strategy!r}; use {', '.join(STRATEGIES)}")
    if strategy == "sentence-window" and window < 0:
        raise ConfigError(f"--window must be >= 0 (got {window}): the sentences kept on each side of a hit")
    if strategy == "auto-merging" and child_size is not None and not 0 < child_size <= chunk_size:
        raise ConfigError(f"--child-size must be > 0 and at most --chunk-size {chunk_size} (got {child_size})")


def _locate(text: str, sentence: str, pos: int) -> tuple[int, int]:
    """(start, end) of `sentence` in `text` at or after `pos` (the splitter may have joined its
    words with single spaces where the text had line breaks)."""
    m = re.compile(r"\s+".join(map(re.escape, sentence.split()))).search(text, pos)
    return (m.start(), m.end()) if m else (pos, pos)


def sentence_window_documents(documents, window: int) -> list[Chunk]:
    """One chunk per sentence (nbllm.text's splitter) with metadata doc (the source), sentence
    (its index in the document) and window (the sentence with its `window` neighbours each side)."""
    from ..text import sentences

    chunks = []
    for doc in documents:
        sents, pos = sentences(doc.text), 0
        for i, sent in enumerate(sents):
            start, pos = _locate(doc.text, sent, pos)
            around = " ".join(sents[max(0, i - window) : i + window + 1])
            meta = {**doc.meta, "doc": doc.source, "sentence": i, "window": around}
            chunks.append(
                Chunk(chunk_id(doc.source, doc.page, f"s{i}:{start}"), sent, doc.source, doc.page, start, meta)
            )
    return chunks


def auto_merging_documents(
    documents, chunk_size: int, overlap: int, child_size: int, length: Callable[[str], int]
) -> list[Chunk]:
    """Parents of `chunk_size` (with `overlap`), each split into children of `child_size` that tile
    it without overlap; the children are returned with metadata parent (a stable id), parent_text
    and children (how many children that parent has)."""
    chunks = []
    for doc in documents:
        for a, b in split_text(doc.text, chunk_size, overlap, length):
            parent, parent_text = chunk_id(doc.source, doc.page, a), doc.text[a:b]
            spans = split_text(parent_text, child_size, 0, length)
            for s, e in spans:
                meta = {**doc.meta, "parent": parent, "parent_text": parent_text, "children": len(spans)}
                cid = chunk_id(doc.source, doc.page, f"{a}:{a + s}")
                chunks.append(Chunk(cid, parent_text[s:e], doc.source, doc.page, a + s, meta))
    return chunks
