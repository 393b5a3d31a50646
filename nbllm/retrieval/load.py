"""Load documents from files, folders, globs, lists and DataFrames.

A file that cannot be read (not UTF-8, empty, a broken PDF...) is reported and skipped,
never crashes the index; a path that does not exist or a file type nbllm cannot read, named
on its own, is an error.

SQLite databases and source code (nbllm.retrieval.structured) are read when named directly or
by a glob; a folder walk reads code files only in a folder that holds no prose or records (a
source tree), and never reads databases (a folder may hold caches such as emb.sqlite).
"""

from __future__ import annotations

import csv
import glob as globlib
import io
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..errors import DataError
from .structured import CODE_TYPES, DB_TYPES, SyntaxFallback, load_code, load_sqlite

TEXT_TYPES = {".txt", ".md", ".markdown", ".rst"}
HTML_TYPES = {".html", ".htm"}
RECORD_TYPES = {".csv", ".json", ".jsonl"}
PROSE = TEXT_TYPES | HTML_TYPES | RECORD_TYPES | {".pdf"}
SUPPORTED = PROSE | DB_TYPES | CODE_TYPES
TEXT_FIELDS = ("text", "content", "body", "document", "page_content")


@dataclass
class Document:
    """One loadable unit: a whole text file, one PDF page, or one record of a csv/json file."""

    text: str
    source: str
    page: int | None = None  # PDF page, or record number in csv/json/jsonl/list, 1-based
    meta: dict = field(default_factory=dict)


@dataclass
class Loaded:
    documents: list[Document]
    skipped: list[tuple[str, str]]  # (source, reason)
    files: int = 0


# ---------------------------------------------------------------- visible HTML text


class _Visible(HTMLParser):
    """Text a browser would show: no <script>, <style>, <head>; block tags end paragraphs."""

    HIDDEN = {"script", "style", "head", "template", "noscript", "svg"}
    BLOCKS = {
        "p",
        "div",
        "section",
        "article",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "br",
        "nav",
        "header",
        "footer",
        "blockquote",
        "pre",
        "main",
        "aside",
        "dd",
        "dt",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(" ".join(data.split()) if data.strip() else " ")


def html_text(markup: str) -> str:
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    paragraphs = [" ".join(p.split()) for p in "".join(parser.parts).split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


# ---------------------------------------------------------------- records


def pick_text_field(record: dict, text_field: str | None, where: str) -> str:
    """The field that holds the text: the one named, a usual name (text, content...), else the
    string field with the longest value in the first record."""
    if text_field:
        if text_field not in record:
            raise DataError(
                f"{where} has no field '{text_field}' (fields: {', '.join(map(str, record))}); "
                "pass --text-field with one of them"
            )
        return text_field
    for name in TEXT_FIELDS:
        if name in record:
            return name
    strings = [k for k, v in record.items() if isinstance(v, str)]
    if not strings:
        raise DataError(f"{where} has no text field (fields: {', '.join(map(str, record))}); pass --text-field NAME")
    return max(strings, key=lambda k: len(record[k]))


def records_to_documents(records, source: str, text_field: str | None) -> list[Document]:
    docs, name = [], None
    for n, rec in enumerate(records, 1):
        if isinstance(rec, str):
            text, meta = rec, {}
        elif isinstance(rec, dict):
            name = name or pick_text_field(rec, text_field, f"{source} record {n}")
            text = rec.get(name)
            meta = {k: v for k, v in rec.items() if k != name and isinstance(v, (str, int, float, bool))}
        else:
            raise DataError(f"{source} record {n} is a {type(rec).__name__}; give strings or dicts")
        if isinstance(text, str) and text.strip():
            docs.append(Document(text, source, n, meta))
    return docs


# ---------------------------------------------------------------- files


class GzipData(ValueError):
    """A text file that holds gzip-compressed bytes (e.g. a .txt.gz renamed .txt)."""


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raise GzipData(path)
    return raw.decode("utf-8")


def load_file(path: Path, source: str, text_field: str | None = None, table: str | None = None) -> list[Document]:
    """Documents of one file; raises UnicodeDecodeError/OSError/ValueError for unreadable files
    (SyntaxFallback for a .py file that does not parse, with its blank-line blocks)."""
    suffix = path.suffix.lower()
    if suffix in DB_TYPES:
        return [Document(*d) for d in load_sqlite(path, source, text_field, table)]
    if suffix in CODE_TYPES:
        return [Document(*d) for d in load_code(_read_text(path), path, source)]
    if suffix in TEXT_TYPES:
        return [Document(_read_text(path), source)]
    if suffix in HTML_TYPES:
        return [Document(html_text(_read_text(path)), source)]
    if suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        return [Document(page.extract_text() or "", source, n) for n, page in enumerate(reader.pages, 1)]
    if suffix == ".jsonl":
        lines = [ln for ln in _read_text(path).splitlines() if ln.strip()]
        return records_to_documents([json.loads(ln) for ln in lines], source, text_field)
    if suffix == ".json":
        data = json.loads(_read_text(path))
        if isinstance(data, dict):  # {"records": [...]} or one record
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        return records_to_documents(data, source, text_field)
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(_read_text(path))))
        return records_to_documents(rows, source, text_field)
    raise DataError(f"file type '{suffix or path.name}' is not supported ({path}); use {', '.join(sorted(SUPPORTED))}")


def _why(err: Exception) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(err, GzipData):
        return "gzip-compressed, not text; decompress it first"
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON ({err.msg}, line {err.lineno})"
    if isinstance(err, OSError):
        return f"unreadable ({err.strerror or type(err).__name__})"
    return f"unreadable ({type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''})"


def _expand(spec: str) -> tuple[list[Path], Path | None, bool]:
    """Files named by a path, a folder (recursive) or a glob, and the root sources are relative to."""
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"no files match '{spec}'; check the pattern (use ** for subfolders)")
        fixed = []
        for part in Path(spec).parts:
            if any(ch in part for ch in "*?["):
                break
            fixed.append(part)
        return files, Path(*fixed) if fixed else Path("."), False
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if not files:
            raise DataError(f"folder '{spec}' holds no files; point at a folder of .txt/.md/.html/.pdf/... files")
        return files, path, True
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED:
            raise DataError(
                f"file type '{path.suffix or path.name}' is not supported ({spec}); "
                f"use one of {', '.join(sorted(SUPPORTED))}"
            )
        return [path], path.parent, False
    raise DataError(f"no such file or folder: '{spec}'; check the path (relative to {Path.cwd()})")


def _source_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _walk_skip(path: Path, prose: bool) -> str | None:
    """Why a folder walk leaves this file out (None: read it)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        return f"unsupported type {path.suffix or '(none)'}"
    if suffix in DB_TYPES:
        return "a SQLite database; index it on its own: %rag index PATH"
    if suffix in CODE_TYPES and prose:
        return "source code in a folder of documents; name it or use a glob such as 'folder/**/*.py'"
    return None


def load(source, text_field: str | None = None, table: str | None = None) -> Loaded:
    """Documents from a path, folder, glob, list of strings/dicts, or a DataFrame (`table`: the
    SQLite tables to read, a name or comma list; default every table)."""
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, str):
        if not source.strip():
            raise DataError("no source given; pass a file, a folder, a glob like 'docs/*.md', or a variable")
        files, root, walked = _expand(source)
        if table and not any(p.suffix.lower() in DB_TYPES for p in files):
            raise DataError(
                f"--table {table} applies to a SQLite database (.db, .sqlite, .sqlite3); '{source}' holds none"
            )
        prose = walked and any(p.suffix.lower() in PROSE for p in files)
        docs, skipped = [], []
        for path in files:
            name = _source_name(path, root)
            why = (
                _walk_skip(path, prose)
                if walked
                else (None if path.suffix.lower() in SUPPORTED else f"unsupported type {path.suffix or '(none)'}")
            )
            if why:
                skipped.append((name, why))
                continue
            try:
                found = load_file(path, name, text_field, table)
            except DataError:
                raise
            except SyntaxFallback as fallback:
                found = [Document(*d) for d in fallback.documents]
                skipped.append((name, fallback.reason))
            except Exception as err:  # noqa: BLE001 - one bad file is reported, the rest is indexed
                skipped.append((name, _why(err)))
                continue
            kept = [d for d in found if d.text.strip()]
            if not kept:
                skipped.append((name, "empty (no text)"))
            docs += kept
        return Loaded(docs, skipped, len(files))
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        records = source.to_dict("records")
        return Loaded(records_to_documents(records, "dataframe", text_field), [], 1)
    if isinstance(source, (list, tuple)):
        if not source:
            raise DataError("the list is empty; give strings or dicts with a text field")
        docs = records_to_documents(list(source), "list", text_field)
        return Loaded(docs, [], 1)
    raise DataError(
        f"cannot load documents from a {type(source).__name__}; "
        "give a path, a folder, a glob, a list of strings/dicts or a DataFrame"
    )
