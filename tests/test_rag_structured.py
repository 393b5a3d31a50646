"""%rag index on structured data and code: SQLite rows (one document per row, columns as
metadata, --table, --where on them), Python split by functions/classes/methods through ast,
other languages by blank-line blocks; the folder rule for code and databases."""

import sqlite3

import pytest
from IPython.core.error import UsageError

from nbllm import rag
from nbllm.retrieval import load
from nbllm.retrieval.embed import EmbeddingCache, get_embedder

PY = '''"""Training helpers."""
import math

RATE = 0.1


def schedule(step):
    """Cosine learning-rate schedule."""
    return RATE * math.cos(step)


class Trainer:
    """Runs the optimisation loop."""

    epochs = 3

    def __init__(self, model):
        self.model = model

    def run(self, steps):
        """Run the gradient descent steps over the batches."""
        return [schedule(s) for s in range(steps)]


if __name__ == "__main__":
    Trainer(None).run(2)
'''

JS = (
    "function add(a, b) {\n  return a + b;\n}\n\n\n// multiply two numbers\nfunction mul(a, b) {\n  return a * b;\n}\n"
)


@pytest.fixture
def fresh_cache(tmp_path):
    """minilm with an empty embedding cache for the test (so `embedded` counts), then the shared one."""
    emb = get_embedder("minilm")
    saved = emb.cache
    emb.cache = EmbeddingCache(saved.model, tmp_path / "emb.sqlite")
    yield emb
    emb.cache = saved


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "data.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT, age INTEGER, city TEXT, photo BLOB)")
    con.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [
            ("Ada Lovelace", 36, "London", b"\x89PNG"),
            ("Alan Turing", 41, "Manchester", None),
            ("Grace Hopper", 29, None, None),
        ],
    )
    con.execute("CREATE TABLE cities (name TEXT, country TEXT, population REAL)")
    con.executemany(
        "INSERT INTO cities VALUES (?, ?, ?)", [("London", "England", 8.9), ("Manchester", "England", 0.55)]
    )
    con.commit()
    con.close()
    return path


@pytest.fixture
def code(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "train.py").write_text(PY)
    (d / "broken.py").write_text("def ok():\n    return 1\n\n\ndef broken(:\n    pass\n")
    (d / "math.js").write_text(JS)
    return d


def test_sqlite_rows_as_documents(db):
    got = load.load(str(db), table="people")
    by = {d.source: d for d in got.documents}
    assert sorted(by) == ["data.db:people:1", "data.db:people:2", "data.db:people:3"]
    ada = by["data.db:people:1"]
    assert ada.text == "name: Ada Lovelace\nage: 36\ncity: London"  # the blob is skipped
    assert ada.meta == {
        "name": "Ada Lovelace",
        "age": 36,
        "city": "London",
        "table": "people",
        "rowid": 1,
        "origin": "data.db:people",
    }
    assert "city" not in by["data.db:people:3"].meta  # None dropped
    every = load.load(str(db))
    assert {d.meta["table"] for d in every.documents} == {"people", "cities"} and len(every.documents) == 5
    named = load.load(str(db), text_field="name", table="cities,people")
    assert named.documents[0].text == "London" and "name" not in named.documents[0].meta
    assert isinstance(named.documents[0].meta["population"], float)


def test_sqlite_index_where_and_idempotent(ip, db, fresh_cache):
    ip.user_ns["dbpath"] = str(db)
    one = ip.run_cell("%rag index {dbpath} --table people --collection sql-one").result
    assert (one.documents, one.added) == (3, 3)
    assert set(rag.query("who", "sql-one", k=5, generate=False).hits.source) == {
        "data.db:people:1",
        "data.db:people:2",
        "data.db:people:3",
    }
    first = ip.run_cell("%rag index {dbpath} --collection sql-all").result
    assert (first.documents, first.added) == (5, 5)
    again = ip.run_cell("%rag index {dbpath} --collection sql-all").result
    assert (again.added, again.unchanged, again.removed, again.embedded) == (0, 5, 0, 0)
    res = ip.run_cell(
        '%%rag -c sql-all --k 5 --no-generate --where \'{"$and": [{"table": "people"}, '
        '{"age": {"$gt": 30}}]}\'\nWho was a mathematician?'
    ).result
    assert sorted(res.hits.source) == ["data.db:people:1", "data.db:people:2"]
    con = sqlite3.connect(db)  # a deleted row's chunk goes on re-indexing
    con.execute("DELETE FROM people WHERE rowid = 3")
    con.commit()
    con.close()
    assert ip.run_cell("%rag index {dbpath} --collection sql-all").result.removed == 1
    for name in ("sql-one", "sql-all"):
        rag.drop(name)


def test_sqlite_errors_are_one_usage_error(ip, db, tmp_path):
    ip.user_ns["dbpath"] = str(db)
    with pytest.raises(UsageError, match=r"data.db has no table 'nope' \(tables: cities, people\)"):
        ip.run_cell("%rag index {dbpath} --table nope --collection sql-bad")
    fake = tmp_path / "notes.sqlite"
    fake.write_text("just some text")
    ip.user_ns["fake"] = str(fake)
    with pytest.raises(UsageError, match="'notes.sqlite' is not a SQLite database"):
        ip.run_cell("%rag index {fake} --collection sql-bad")
    ip.user_ns["txt"] = str(tmp_path / "a.txt")
    (tmp_path / "a.txt").write_text("plain text")
    with pytest.raises(UsageError, match="--table people applies to a SQLite database"):
        ip.run_cell("%rag index {txt} --table people --collection sql-bad")
    assert ip.run_cell("1 + 1").result == 2


def test_python_by_functions_classes_methods(code):
    got = load.load(str(code / "train.py"))
    by = {d.source: d for d in got.documents}
    assert list(by) == [
        "train.py::schedule",
        "train.py::Trainer",
        "train.py::Trainer.__init__",
        "train.py::Trainer.run",
        "train.py::<module>",
    ]
    assert by["train.py::Trainer.run"].meta == {
        "qualname": "Trainer.run",
        "kind": "method",
        "lineno": 20,
        "language": "python",
        "origin": "train.py",
    }
    assert by["train.py::Trainer.run"].text.startswith('def run(self, steps):\n    """Run the gradient')
    assert by["train.py::schedule"].meta["kind"] == "function" and '"""Cosine' in by["train.py::schedule"].text
    cls = by["train.py::Trainer"]
    assert cls.meta["kind"] == "class" and '"""Runs the optimisation loop."""' in cls.text
    assert "epochs = 3" in cls.text and "def run" not in cls.text  # methods are their own documents
    module = by["train.py::<module>"]
    assert module.meta["kind"] == "module" and "import math" in module.text and "__main__" in module.text
    assert "def schedule" not in module.text and got.skipped == []


def test_syntax_error_and_other_languages_by_blocks(code):
    got = load.load(str(code / "broken.py"))
    assert [(d.source, d.page, d.meta["lineno"]) for d in got.documents] == [("broken.py", 1, 1), ("broken.py", 2, 5)]
    why = "syntax error line 5 (invalid syntax); indexed by blank-line blocks instead of functions and classes"
    assert got.skipped == [("broken.py", why)]
    js = load.load(str(code / "math.js")).documents
    assert [(d.meta["language"], d.meta["lineno"]) for d in js] == [("javascript", 1), ("javascript", 6)]
    assert js[1].text.startswith("// multiply")


def test_folder_rule_for_code_and_databases(code, db, tmp_path):
    src = load.load(str(code))  # a folder of code only: a source tree, indexed
    assert {d.source.split("::")[0] for d in src.documents} == {"train.py", "broken.py", "math.js"}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nHow to train.\n")
    (docs / "conf.py").write_text("project = 'x'\n")
    (docs / "cache.sqlite").write_bytes(db.read_bytes())
    got = load.load(str(docs))  # a docs folder: its prose only
    assert [d.source for d in got.documents] == ["guide.md"]
    assert dict(got.skipped) == {
        "conf.py": "source code in a folder of documents; name it or use a glob such as 'folder/**/*.py'",
        "cache.sqlite": "a SQLite database; index it on its own: %rag index PATH",
    }
    assert [d.source for d in load.load(str(docs / "*.py")).documents] == ["conf.py::<module>"]


def test_code_index_and_query_with_provenance(ip, code, fresh_cache):
    ip.user_ns["srcdir"] = str(code)
    report = ip.run_cell("%rag index {srcdir} --collection code-test").result
    assert report.added >= 9 and [s for s, _ in report.skipped_files] == ["broken.py"]
    res = ip.run_cell(
        "%%rag -c code-test --k 1 --no-generate --where kind=method\ngradient descent steps over batches"
    ).result
    assert res.hits.source.iloc[0] == "train.py::Trainer.run"
    hit = rag.query("learning-rate schedule", "code-test", k=1, generate=False, where={"qualname": "schedule"})
    assert hit.hits.source.iloc[0] == "train.py::schedule"
    assert ip.run_cell("%rag index {srcdir} --collection code-test").result.added == 0
    rag.drop("code-test")
