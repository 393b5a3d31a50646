"""Structured data and source code as documents: SQLite rows, Python defs, code blocks.

- SQLite (.db/.sqlite/.sqlite3, checked by the 'SQLite format 3' header, opened read-only):
  one document per row, its text "col: value" lines (or the --text-field column), its scalar
  columns as metadata plus `table` and `rowid`; source "data.db:TABLE:ROWID".
- Python (.py): one document per top-level function, class and method (through `ast`), the
  module-level code left over as one "module" document; metadata qualname, kind, lineno;
  source "file.py::Trainer.run". A file that does not parse is split by blank-line blocks.
- Other source languages: blank-line blocks, metadata language and lineno.

Every document also carries `origin` (the file, or "data.db:TABLE"): re-indexing it removes
the chunks of rows and defs that are gone.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import textwrap
from pathlib import Path

from ..errors import DataError

DB_TYPES = {".db", ".sqlite", ".sqlite3"}
LANGUAGES = {
    ".js": "javascript",
    ".ts": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".cpp": "cpp",
    ".h": "c",
    ".rb": "ruby",
    ".sh": "shell",
}
CODE_TYPES = {".py"} | set(LANGUAGES)
SQLITE_HEADER = b"SQLite format 3\x00"
BLANK = re.compile(r"\n[ \t]*\n\s*")


def _doc(text: str, source: str, page, meta: dict) -> tuple:
    """A document as (text, source, page, meta); nbllm.retrieval.load makes its Documents of them."""
    return text, source, page, meta


class SyntaxFallback(Exception):
    """A .py file that does not parse; carries the block documents it was split into instead."""

    def __init__(self, documents, reason):
        super().__init__(reason)
        self.documents, self.reason = documents, reason


# ---------------------------------------------------------------- SQLite


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == SQLITE_HEADER


def _tables(con) -> list[str]:
    rows = con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def load_sqlite(path: Path, source: str, text_field: str | None = None, table: str | None = None):
    """One Document per row of `table` (a name or comma list; default: every table)."""
    if not is_sqlite(path):
        raise DataError(
            f"'{source}' is not a SQLite database (no 'SQLite format 3' header); give a SQLite file "
            f"or rename it (a {path.suffix} file is read as SQLite)"
        )
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        there = _tables(con)
        wanted = [t.strip() for t in table.split(",") if t.strip()] if table else there
        missing = [t for t in wanted if t not in there]
        if missing:
            raise DataError(
                f"{source} has no table {', '.join(repr(t) for t in missing)} "
                f"(tables: {', '.join(there) or 'none'}); pass --table with one of them"
            )
        docs = []
        for name in wanted:
            quoted = '"' + name.replace('"', '""') + '"'
            try:
                cur = con.execute(f"SELECT rowid, * FROM {quoted}")
                with_rowid = True
            except sqlite3.OperationalError:  # a WITHOUT ROWID table: the row's number instead
                cur = con.execute(f"SELECT * FROM {quoted}")
                with_rowid = False
            columns = [d[0] for d in cur.description][1 if with_rowid else 0 :]
            if text_field and text_field not in columns:
                raise DataError(
                    f"table '{name}' of {source} has no column '{text_field}' "
                    f"(columns: {', '.join(columns)}); pass --text-field with one of them"
                )
            for n, row in enumerate(cur, 1):
                rowid, values = (row[0], row[1:]) if with_rowid else (n, row)
                pairs = [(c, v) for c, v in zip(columns, values) if v is not None and not isinstance(v, bytes)]
                if text_field:
                    text = values[columns.index(text_field)]
                    text = text if isinstance(text, str) else "" if text is None else str(text)
                else:
                    text = "\n".join(f"{c}: {v}" for c, v in pairs)
                meta = {c: v for c, v in pairs if isinstance(v, (int, float, str)) and c != text_field}
                meta.update(table=name, rowid=rowid, origin=f"{source}:{name}")
                docs.append(_doc(text, f"{source}:{name}:{rowid}", None, meta))
        return docs
    finally:
        con.close()


# ---------------------------------------------------------------- code


def blocks(text: str, source: str, language: str) -> list:
    """Blank-line blocks of `text`, each a Document with its first line number."""
    docs, start = [], 0
    cuts = [(m.start(), m.end()) for m in BLANK.finditer(text)] + [(len(text), len(text))]
    for a, b in cuts:
        block = text[start:a]
        if block.strip():
            lead = len(block) - len(block.lstrip("\n"))
            lineno = text.count("\n", 0, start + lead) + 1
            docs.append(
                _doc(
                    block.strip("\n"),
                    source,
                    len(docs) + 1,
                    {"language": language, "lineno": lineno, "origin": source},
                )
            )
        start = b
    return docs


def _span(node) -> tuple[int, int]:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first, node.end_lineno


def load_python(text: str, source: str) -> list:
    """One Document per top-level function, class and method; the rest as one module document."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        reason = (
            f"syntax error line {err.lineno} ({err.msg}); indexed by blank-line blocks instead of "
            "functions and classes"
        )
        raise SyntaxFallback(blocks(text, source, "python"), reason) from None
    lines = text.splitlines()
    docs, seen = [], set()

    def segment(a: int, b: int, drop=()) -> str:
        keep = [ln for i, ln in enumerate(lines[a - 1 : b], a) if not any(x <= i <= y for x, y in drop)]
        return re.sub(r"\n[ \t]*\n(\s*\n)+", "\n\n", textwrap.dedent("\n".join(keep)).strip("\n"))

    def add(text_, qualname, kind, lineno, at=None):
        where = f"{source}::{qualname}"
        if where in seen:  # a second def of the same name (a property setter, a redefinition)
            where = f"{where}@{lineno}"
        seen.add(where)
        docs.insert(
            len(docs) if at is None else at,
            _doc(
                text_,
                where,
                None,
                {"qualname": qualname, "kind": kind, "lineno": lineno, "language": "python", "origin": source},
            ),
        )

    def visit(body, prefix: str, in_class: bool):
        taken = []
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                a, b = _span(node)
                taken.append((a, b))
                qual = f"{prefix}{node.name}"
                if isinstance(node, ast.ClassDef):
                    at = len(docs)  # the class before its methods
                    inner = visit(node.body, qual + ".", True)
                    add(segment(a, b, inner), qual, "class", node.lineno, at)
                else:
                    add(segment(a, b), qual, "method" if in_class else "function", node.lineno)
        return taken

    taken = visit(tree.body, "", False)
    rest = segment(1, len(lines), taken)
    if rest.strip():
        first = next(i for i, ln in enumerate(lines, 1) if ln.strip() and not any(x <= i <= y for x, y in taken))
        docs.append(
            _doc(
                rest,
                f"{source}::<module>",
                None,
                {"qualname": "<module>", "kind": "module", "lineno": first, "language": "python", "origin": source},
            )
        )
    return docs


def load_code(text: str, path: Path, source: str) -> list:
    if path.suffix.lower() == ".py":
        return load_python(text, source)
    return blocks(text, source, LANGUAGES[path.suffix.lower()])
