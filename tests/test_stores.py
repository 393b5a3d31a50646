"""Vector stores behind one interface: Chroma, FAISS (flat, HNSW) and LanceDB (flat, IVF) return
the exact top-k of numpy, the same distances, the same --where results; re-indexing replaces by id;
persisted FAISS/LanceDB folders survive a new process; bad input is one UsageError line; a failed
write leaves the collection as it was."""

import json
import subprocess
import sys

import numpy as np
import pytest
from IPython.core.error import UsageError

from nbllm import rag
from nbllm.errors import ConfigError
from nbllm.retrieval import search, store
from nbllm.retrieval.stores import base

pytest.importorskip("faiss")
pytest.importorskip("lancedb")

# (store, --index): every search path there is
PATHS = [("chroma", "auto"), ("faiss", "flat"), ("faiss", "ann"), ("lancedb", "flat"), ("lancedb", "ann")]
NOTES = [
    "Cats are small felines that purr.",
    "Rust is a systems programming language.",
    "Volcanoes erupt molten rock called lava.",
    "Sourdough bread needs a starter.",
]


def make(kind, name, vecs, space="l2", index="auto", metas=None):
    """A collection of `kind` holding `vecs` under ids 00000..., with metadata."""
    if store.exists(name, store=kind):
        store.drop(name, store=kind)
    col = store.open_for_write(
        name, "random", vecs.shape[1], space, {}, store=kind, index=index if kind != "chroma" else "auto"
    )
    ids = [f"{i:05d}" for i in range(len(vecs))]
    metas = metas or [{"source": f"s{i % 3}", "page": i % 5, "offset": i} for i in range(len(vecs))]
    store.write(col, ids, vecs, [f"text {i}" for i in range(len(vecs))], metas)
    return col, ids


def clustered(rng, n, dim=32, topics=100):
    """Random vectors around `topics` random centres, as embeddings of texts on a few topics are
    (uniform random vectors have no neighbourhoods: no index finds them but brute force)."""
    centres = np.random.default_rng(123).normal(size=(topics, dim))
    return (centres[rng.integers(0, topics, n)] + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)


def exact_ids(vecs, ids, q, space, k, mask=None):
    d = base.distance(vecs, q, space)
    if mask is not None:
        d = np.where(mask, d, np.inf)
    return [ids[i] for i in search.top_k(d, ids, k) if np.isfinite(d[i])]


@pytest.mark.slow
@pytest.mark.parametrize("kind, index", PATHS)
def test_top_k_matches_exact_numpy_search_at_10k(kind, index):
    rng = np.random.default_rng(0)
    vecs, queries = clustered(rng, 10_000), clustered(rng, 30)
    col, ids = make(kind, f"recall-{kind}-{index}", vecs, "l2", index)
    try:
        assert col.count() == 10_000
        recall = []
        for q in queries:
            truth = set(exact_ids(vecs, ids, q, "l2", 10))
            got = [h["id"] for h in search.dense(col, q, 10)]
            assert len(got) == 10
            recall.append(len(truth & set(got)) / 10)
        assert np.mean(recall) >= 0.98, (kind, index, np.mean(recall))
        if kind == "faiss" and index == "ann":
            assert type(col._index).__name__ == "IndexHNSWFlat"
        if kind == "lancedb" and index == "ann":
            assert col.index_type() == "IvfFlat"
    finally:
        store.drop(f"recall-{kind}-{index}", store=kind)


def test_lancedb_probes_a_share_of_a_large_index_and_all_of_a_small_one():
    from nbllm.retrieval.stores.lancedb import probes

    assert probes(17) == 17  # 300 chunks forced to --index ann: nothing is left out
    assert probes(141) == 32  # 20k chunks, where the index starts
    assert probes(316) == 40  # 100k chunks: an eighth
    assert all(probes(p) <= probes(p + 1) for p in range(1, 2000))  # more partitions, never fewer probes


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_every_store_reports_the_same_distances(space):
    rng = np.random.default_rng(1)
    vecs = (rng.normal(size=(300, 16)) * rng.uniform(0.5, 2.0, size=(300, 1))).astype(np.float32)  # lengths differ
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    got = {}
    for kind, index in PATHS:
        col, ids = make(kind, f"dist-{kind}-{index}-{space}", vecs, space, index)
        try:
            got[kind, index] = [search.dense(col, q, 8) for q in queries]
        finally:
            store.drop(f"dist-{kind}-{index}-{space}", store=kind)
    for n, q in enumerate(queries):
        want = base.distance(vecs, q, space)
        truth = exact_ids(vecs, ids, q, space, 8)
        for key, hits in got.items():
            assert [h["id"] for h in hits[n]] == truth, key
            assert np.allclose(
                [h["distance"] for h in hits[n]], [want[int(i)] for i in truth], rtol=1e-5, atol=1e-5
            ), key
    if space == "ip":  # Chroma's definitions: 1 - a.b for ip
        assert np.allclose(base.distance(vecs[:2], vecs[0], "ip"), 1 - vecs[:2] @ vecs[0], atol=1e-5)
    assert np.allclose(base.distance(vecs[:3], vecs[0], "l2"), ((vecs[:3] - vecs[0]) ** 2).sum(1), atol=1e-3)


WHERES = [
    {"source": "s1"},
    {"page": {"$gte": 3}},
    {"source": {"$in": ["s0", "s2"]}},
    {"page": {"$ne": 2}},
    {"$and": [{"source": "s1"}, {"page": {"$lt": 2}}]},
    {"$or": [{"source": "s2"}, {"page": 4}]},
    {"source": {"$nin": ["s0"]}},
    {"offset": 7},
    {"source": "nowhere"},
]


def test_where_filters_give_the_same_results_on_every_store():
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(240, 16)).astype(np.float32)
    q = rng.normal(size=16).astype(np.float32)
    metas = [{"source": f"s{i % 3}", "page": i % 5, "offset": i} for i in range(len(vecs))]
    results = {}
    for kind, index in PATHS:
        col, ids = make(kind, f"where-{kind}-{index}", vecs, "l2", index, metas)
        try:
            results[kind, index] = [
                ([h["id"] for h in search.dense(col, q, 6, w)], sorted(col.get(where=w, include=[])["ids"]))
                for w in WHERES
            ]
        finally:
            store.drop(f"where-{kind}-{index}", store=kind)
    for n, w in enumerate(WHERES):
        mask = base.where_mask(metas, w)
        want = exact_ids(vecs, ids, q, "l2", 6, mask)
        for key, got in results.items():
            assert got[n] == (want, sorted(np.array(ids)[mask].tolist())), (key, w)
    with pytest.raises(ConfigError, match="operator '\\$like' is not known"):
        base.matches({"source": "a"}, {"source": {"$like": "a"}})


@pytest.mark.parametrize("kind", ["faiss", "lancedb"])
def test_reindexing_replaces_by_id(kind, tmp_path):
    notes = list(NOTES)
    first = rag.index(notes, "idem-test", store=kind, persist=str(tmp_path))
    again = rag.index(notes, "idem-test", store=kind, persist=str(tmp_path))
    assert (first.added, again.added, again.updated, again.unchanged, again.total) == (4, 0, 0, 4, 4)
    notes[1] = "Rust is a memory-safe systems language."
    edited = rag.index(notes, "idem-test", store=kind, persist=str(tmp_path))
    assert (edited.updated, edited.added, edited.total) == (1, 0, 4)
    col = store.get_collection("idem-test", str(tmp_path), store=kind)
    rows = store.all_rows(col)
    assert len(rows["ids"]) == len(set(rows["ids"])) == 4 and notes[1] in rows["documents"]
    col.upsert(
        ids=rows["ids"][:2],
        embeddings=np.asarray(rows["embeddings"][:2]),
        documents=rows["documents"][:2],
        metadatas=rows["metadatas"][:2],
    )  # the same ids again: replaced, not added
    assert col.count() == 4
    shrunk = rag.index(notes[:2], "idem-test", store=kind, persist=str(tmp_path))
    assert (shrunk.removed, shrunk.total) == (2, 2)
    res = rag.query("Which animal purrs?", "idem-test", persist=str(tmp_path), k=1, generate=False)
    assert res.contexts == [NOTES[0]] and "persistent folder" in shrunk.where and kind in shrunk.where


INDEX_SCRIPT = """
import sys
from nbllm import rag
notes = {notes!r}
print(rag.index(notes, "restart-test", store=sys.argv[1], persist=sys.argv[2], distance="cosine").total)
"""
QUERY_SCRIPT = """
import json, sys
from nbllm import rag
res = rag.query("What comes out of a volcano?", "restart-test", persist=sys.argv[2], k=2, generate=False)
print(json.dumps([list(res.hits.id), [round(d, 5) for d in res.hits.distance], res.config["distance"],
                  rag.collections(persist=sys.argv[2]).to_pandas().chunks.tolist()]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["faiss", "lancedb"])
def test_a_persisted_collection_survives_a_new_process(kind, tmp_path):
    def run(code):
        out = subprocess.run(
            [sys.executable, "-c", code, kind, str(tmp_path / kind)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    assert run(INDEX_SCRIPT.format(notes=NOTES)) == "4"
    assert json.loads((tmp_path / kind / base.MARKER).read_text())["store"] == kind
    ids, distances, space, counts = json.loads(run(QUERY_SCRIPT))  # no --store: the folder says which
    assert space == "cosine" and counts == [4]
    rag.index(NOTES, "restart-here", store="chroma", distance="cosine")  # the same vectors in Chroma
    try:
        want = rag.query("What comes out of a volcano?", "restart-here", k=2, generate=False)
        assert ids == list(want.hits.id) and np.allclose(distances, want.hits.distance, atol=1e-4)
        assert want.contexts[0] == NOTES[2]
    finally:
        rag.drop("restart-here")


# ---------------------------------------------------------------- bad input, through a real shell


@pytest.fixture
def notes(ip):
    ip.user_ns["store_notes"] = list(NOTES)
    return "store_notes"


def test_refusals_are_one_usage_error_line(ip, notes, tmp_path, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    chroma_dir, faiss_dir = tmp_path / "chroma", tmp_path / "faiss"
    ip.run_cell(f"%rag index {notes} --collection refuse-test --persist {chroma_dir}")
    ip.run_cell(f"%rag index {notes} --collection refuse-test --persist {faiss_dir} --store faiss --distance cosine")
    cases = [
        (
            f"%rag index {notes} --store pinecone",
            "ConfigError: unknown store 'pinecone'; use --store chroma, faiss, lancedb",
        ),
        (
            f"%rag index {notes} --collection refuse-test --persist {chroma_dir} --store faiss",
            f"the folder {chroma_dir} holds a chroma store, not faiss; open it with --store chroma",
        ),
        (
            f"%rag index {notes} --collection refuse-test --persist {faiss_dir} --store lancedb",
            f"the folder {faiss_dir} holds a faiss store, not lancedb",
        ),
        (
            f"%%rag --collection refuse-test --persist {faiss_dir} --store chroma\nlava?",
            f"the folder {faiss_dir} holds a faiss store, not chroma",
        ),
        (
            f"%rag index {notes} --collection refuse-test --persist {faiss_dir}",  # the folder's store, its distance
            "collection 'refuse-test' uses distance cosine, not l2 (fixed when it was created); use --distance cosine",
        ),
        (
            f"%rag index {notes} --collection refuse-test --persist {faiss_dir} --distance cosine --index ann",
            "created with --index auto, not ann",
        ),
        (f"%rag index {notes} --store faiss --server http://127.0.0.1:9", "--server is a Chroma server"),
        (f"%rag index {notes} --collection flat-chroma --index flat", "Chroma always builds an HNSW index"),
        ("%rag list --store nope", "unknown store 'nope'"),
    ]
    for cell, message in cases:
        capsys.readouterr()
        shown = InteractiveShell.run_cell(ip, cell)
        assert isinstance(shown.error_in_exec, UsageError), cell
        printed = capsys.readouterr()
        assert "Traceback" not in printed.out + printed.err
        lines = printed.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (cell, lines)
    assert store.get_collection("refuse-test", str(faiss_dir)).count() == 4  # the refusals changed nothing
    assert ip.run_cell("1 + 1").result == 2


def test_another_dimension_is_refused(ip, notes):
    col = store.open_for_write("dim-test", "minilm", 8, "l2", {}, store="faiss")
    store.write(col, ["a"], np.ones((1, 8), np.float32), ["eight numbers"], [{"source": "x"}])
    try:
        with pytest.raises(
            UsageError,
            match="ConfigError: collection 'dim-test' was built with embedder 'minilm' "
            "\\(8-d vectors\\), not 'minilm' \\(384-d\\); .*a new --collection",
        ):
            ip.run_cell(f"%rag index {notes} --collection dim-test --store faiss")
        assert col.count() == 1
        from nbllm.errors import DataError

        with pytest.raises(DataError, match="holds 8-d vectors; got 4-d"):
            col.upsert(ids=["b"], embeddings=np.ones((1, 4), np.float32), documents=["x"], metadatas=[{}])
        assert col.count() == 1
    finally:
        store.drop("dim-test", store="faiss")


@pytest.mark.parametrize("module, package", [("faiss", "faiss-cpu"), ("lancedb", "lancedb")])
def test_a_missing_package_names_the_pip_install(ip, notes, monkeypatch, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # import faiss / lancedb now raises ImportError
    with pytest.raises(
        UsageError, match=f"ConfigError: --store {module} needs the {package} package: pip install {package}"
    ):
        ip.run_cell(f"%rag index {notes} --collection missing-test --store {module}")


def test_a_failed_write_leaves_the_collection_as_it_was(tmp_path, monkeypatch):
    import faiss

    from nbllm.retrieval.stores import faiss as faiss_store
    from nbllm.retrieval.stores import lancedb as lance_store

    folder = str(tmp_path / "f")
    rag.index(NOTES, "fail-test", store="faiss", persist=folder)
    rag.index(NOTES, "fail-test", store="lancedb")
    before = {
        kind: store.all_rows(store.get_collection("fail-test", folder if kind == "faiss" else None, store=kind))
        for kind in ("faiss", "lancedb")
    }

    def broken(*args, **kwargs):
        raise OSError("disk full")

    changed = NOTES[:2] + ["A new note about glaciers."]  # adds one, removes two
    monkeypatch.setattr(faiss, "write_index", broken)
    with pytest.raises(OSError, match="disk full"):
        rag.index(changed, "fail-test", store="faiss", persist=folder)
    monkeypatch.setattr(lance_store.LanceCollection, "_maybe_index", broken)  # after merge_insert and delete
    with pytest.raises(OSError, match="disk full"):
        rag.index(changed, "fail-test", store="lancedb")
    monkeypatch.undo()
    faiss_store._STORES.clear()  # the FAISS folder as a new process would read it
    for kind, where in (("faiss", folder), ("lancedb", None)):
        col = store.get_collection("fail-test", where, store=kind)
        after = store.all_rows(col)
        assert after["ids"] == before[kind]["ids"] and after["documents"] == before[kind]["documents"]
        assert np.array_equal(np.asarray(after["embeddings"]), np.asarray(before[kind]["embeddings"]))
        res = rag.query("What is lava?", "fail-test", persist=where, store=kind, k=1, generate=False)
        assert res.contexts == [NOTES[2]]
    rag.drop("fail-test", store="lancedb")
    assert rag.index(changed, "fail-test", store="faiss", persist=folder).total == 3  # and works again


def test_magics_list_explore_and_query_on_faiss_and_lancedb(ip, notes):
    for kind in ("faiss", "lancedb"):
        ip.run_cell(f"%rag index {notes} --collection magic-{kind} --store {kind}")
        assert f"magic-{kind}" in repr(ip.run_cell(f"%rag list --store {kind}").result)
        res = ip.run_cell(f"%%rag --collection magic-{kind} --k 1 --no-generate --where page=3\nlava").result
        assert res.contexts == [NOTES[2]]
        hybrid = ip.run_cell(f"%%rag --collection magic-{kind} --k 2 --hybrid --exact --no-generate\nbread").result
        assert hybrid.contexts[0] == NOTES[3]
        explorer = ip.run_cell(f"%rag explore --collection magic-{kind} --out ex").result
        assert explorer.store == kind and explorer.search("What purrs?").contexts[0] == NOTES[0]
        assert "Cats" in explorer.results.value
        ip.run_cell(f"%rag drop magic-{kind}")
        with pytest.raises(UsageError, match=f"no collection 'magic-{kind}' in {kind} memory"):
            ip.run_cell(f"%%rag --collection magic-{kind} --store {kind}\nanything")


def test_loading_nbllm_imports_no_store_library():
    code = (
        "import sys, nbllm, nbllm.magics, nbllm.rag, nbllm.retrieval.store; "
        "print(sorted(m for m in ('faiss', 'lancedb', 'chromadb', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_registered_store_is_one_more_choice(monkeypatch):
    """What a Pinecone adapter would do: a module with connect(persist) under a new --store name."""
    from nbllm.retrieval import stores

    monkeypatch.setitem(stores.STORES, "mine", "nbllm.retrieval.stores.faiss")
    report = rag.index(NOTES, "mine-test", store="mine")
    assert report.total == 4 and "mine memory" in report.where
    assert rag.query("lava", "mine-test", k=1, generate=False).contexts == [NOTES[2]]
    rag.drop("mine-test")
