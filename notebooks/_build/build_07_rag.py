"""Generate notebooks/07_rag.ipynb (Lab 7: retrieval-augmented generation), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "07_rag.ipynb"

LAB = Lab("lab07", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 7 · Retrieval-augmented generation: load, split, embed, store, retrieve, generate

A language model answers from what it saw in training. It cannot know your documents, it cannot say
where an answer came from, and updating what it knows means training it again. Retrieval-augmented
generation (RAG) leaves the model alone and looks things up first:

1. **Load** documents: PDF, HTML, plain text, CSV, JSON...
2. **Split** them into chunks small enough to embed and to fit in a prompt.
3. **Embed** every chunk: a sentence encoder maps text to a vector whose direction captures meaning.
4. **Store** the vectors in a vector database (Chroma here; FAISS, Lance and Pinecone are others).
5. **Retrieve** the chunks closest to the embedded question.
6. **Generate** an answer from the question plus the retrieved chunks, numbered so it can cite them.

By the end of this lab you will be able to

- say what each step does and what can go wrong in it, on a small corpus shipped with nbllm;
- compute Chroma's three distances (squared L2, inner product, cosine) by hand, and explain why they
  rank alike on normalised vectors and when they do not;
- see how chunk size and overlap change what a search can find;
- combine full-text search with vector search (hybrid), re-rank candidates, and cache embeddings;
- read an answer's citations, and tell the citations a model wrote from ones computed afterwards;
- score configurations with the RAG triad: context relevance, groundedness, answer relevance.

Everything runs offline: the encoder is all-MiniLM-L6-v2 (384-dimensional vectors, packaged) and the
generator is SmolLM2-135M-Instruct. The whole notebook takes a few minutes on a 2-core CPU; most of
that is SmolLM2 at work (re-ranking, and three short answers).
""")

md("""
## Parameters

The cell is tagged `parameters`. The checks below hold for other values too (within reason).
""")

code("""
import nbllm

CORPUS = str(nbllm.rag.corpus_dir())  # ~20 short original documents about this course
COLLECTION = "course"                 # the Chroma collection we build
CHUNK_SIZE = 128                      # tokens of the encoder per chunk
OVERLAP = 16                          # tokens repeated between neighbouring chunks
K = 3                                 # chunks retrieved per question
MODEL = "smollm2"                     # the generator (and the re-ranker's language model)
MAX_NEW_TOKENS = 40                   # answer length; SmolLM2 is slow on a CPU
""", tags=["parameters"])

code("""
%load_ext nbllm
""")

code("""
import numpy as np
import pandas as pd

from nbllm.retrieval import load, search, split, store
from nbllm.retrieval.embed import get_embedder
""")

# ------------------------------------------------------------------ 1. load

md("""
## 1 · Load

The corpus folder mixes formats on purpose: Markdown, plain text, HTML, a three-page PDF, and a JSONL
file of glossary records. nbllm's loader turns each into *documents*: a whole text file is one
document, a PDF gives one per page, and a JSONL file one per record. Each document keeps its source
(and page or record number), which every chunk made from it inherits.
""")

code("""
loaded = load.load(CORPUS)
documents = pd.DataFrame([{"source": d.source, "page": d.page, "characters": len(d.text),
                           "starts with": d.text[:60].replace("\\n", " ")} for d in loaded.documents])
documents["page"] = documents["page"].astype("Int64")  # PDF page or JSONL record number; empty otherwise
print(f"{loaded.files} files -> {len(documents)} documents, {len(loaded.skipped)} skipped")
documents
""")

md("""
For HTML, only the text a browser would show is kept: no tags, no `<head>`, no `<script>` or
`<style>`. A PDF page's text comes from `pypdf`. Look at what survives of the HTML page:
""")

code("""
html_doc = next(d for d in loaded.documents if d.source == "peft_methods.html")
pdf_pages = [d for d in loaded.documents if d.source.endswith(".pdf")]

assert "<" not in html_doc.text and "console.log" not in html_doc.text  # tags and scripts are gone
assert [d.page for d in pdf_pages] == [1, 2, 3]
assert not loaded.skipped
print(html_doc.text[:400])
""")

# ------------------------------------------------------------------ 2. split

md("""
## 2 · Split

An encoder reads at most a fixed number of tokens (256 for MiniLM) and silently drops the rest, and a
vector of a long text blurs several topics together. So documents are cut into **chunks**. nbllm's
splitter measures sizes in the encoder's own tokens and tries the coarsest boundary first: paragraphs,
then sentences, then words. So a chunk never ends in the middle of a word. **Overlap** repeats the end
of one chunk at the start of the next, so a sentence cut at a boundary is whole in at least one chunk.

Here is one document split small, so that you can see the boundaries and the overlap:
""")

code("""
encoder = get_embedder("minilm")
lora_text = next(d.text for d in loaded.documents if d.source == "lora.md")
spans = split.split_text(lora_text, 48, 12, encoder.tokens)  # (start, end) characters, 48 tokens, overlap 12

for n, (a, b) in enumerate(spans[:5], 1):
    print(f"chunk {n}: characters {a}-{b}, {encoder.tokens(lora_text[a:b])} tokens")
    print("   ", lora_text[a:b].replace("\\n", " "))
overlapping = sum(1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]) if a2 < b1)
assert all(not lora_text[a - 1].isalnum() for a, _ in spans if a > 0)  # every chunk starts at a word
print(f"{len(spans)} chunks; {overlapping} of them start inside the previous one (the overlap)")
""")

# ------------------------------------------------------------------ 3. embed and store

md("""
## 3 · Embed and store

`%rag index` does all of it: load, split, embed every chunk with MiniLM (batched), and store text,
vector and metadata (source, page, offset) in a Chroma collection. The collection lives in memory
unless you pass `--persist DIR` (a folder that survives a kernel restart) or `--server URL` (a running
`chroma run`). The distance is fixed when a collection is created; Chroma's default is squared L2.
""")

code("""
%rag index {CORPUS} --collection {COLLECTION} --chunk-size {CHUNK_SIZE} --overlap {OVERLAP} --out report
""")

code("""
assert report.documents == len(loaded.documents) and report.added == report.chunks == report.total
print(f"{report.chunks} chunks from {report.documents} documents; {report.embedded} embedded now, the rest "
      "came from the embedding cache (a machine that ran this lab before has them all)")
""")

md("""
### Caching: indexing again is (almost) free

Each chunk's id is a hash of its source, page and offset, and its metadata stores a hash of its text.
Indexing the same corpus again finds every chunk already there, unchanged, and embeds nothing. (If a
file changed, only its changed chunks are embedded and replaced, and chunks that no longer exist are
removed.) Separately, nbllm caches every vector by model and text hash on disk, so even a new collection
over the same texts embeds nothing.
""")

code("""
again = %rag index {CORPUS} --collection {COLLECTION} --chunk-size {CHUNK_SIZE} --overlap {OVERLAP}
assert (again.added, again.updated, again.removed, again.embedded) == (0, 0, 0, 0)
assert again.unchanged == report.chunks and again.total == report.total
print(again)
""")

# ------------------------------------------------------------------ 4. retrieve

md("""
## 4 · Retrieve

`%%rag` with `--no-generate` embeds the question and asks Chroma for the `K` nearest chunks. Each hit
has its source, page, distance, and a score where higher is better (for L2, the negative distance).
The result's HTML view shows each hit as a card with the question's words marked.
""")

code("""
%%rag --collection {COLLECTION} --k {K} --no-generate --out found
Which benchmark has grade school math word problems?
""")

code("""
top = found.hits.iloc[0]
assert top.source == "evaluation_benchmarks.pdf" and top.page == 2  # the PDF page that describes GSM8K
assert found.hits.distance.is_monotonic_increasing
found.hits[["rank", "source", "page", "score", "distance"]]
""")

md("""
Metadata can filter the search: `--where source=lora.md` (or JSON) searches one document only.
""")

code("""
only_lora = %rag How is the matrix B initialised? --collection {COLLECTION} --k 2 --no-generate --where source=lora.md
assert set(only_lora.sources) == {"lora.md"}
assert any("initialised to zero" in text for text in only_lora.contexts)
print(only_lora)
""")

# ------------------------------------------------------------------ 5. distances

md("""
## 5 · Three distances

Chroma offers three distances between a query vector $q$ and a chunk vector $c$:

| name | distance | in words |
|---|---|---|
| `l2` (default) | $\\sum_i (q_i - c_i)^2$ | squared Euclidean distance |
| `ip` | $1 - q \\cdot c$ | one minus the dot product |
| `cosine` | $1 - \\frac{q \\cdot c}{\\lVert q \\rVert \\lVert c \\rVert}$ | one minus the cosine of the angle |

`--exact` skips Chroma's approximate index (HNSW) and computes all three for every chunk by brute force
with numpy, side by side, with each chunk's rank under each distance and its rank in HNSW's answer.
""")

code("""
exact = %rag What is the RAG triad? --collection {COLLECTION} --k 5 --exact --no-generate
table = exact.hits[["rank", "source", "l2", "ip", "cosine", "rank_l2", "rank_ip", "rank_cosine", "hnsw_rank"]]
table.round(4)
""")

md("""
MiniLM normalises its vectors to length 1. Then $\\lVert q - c \\rVert^2 = 2 - 2\\, q \\cdot c$, and
$q \\cdot c$ *is* the cosine. So the L2 distance is exactly twice the other two, and all three rank the
chunks the same way. HNSW, an approximate graph search, found the exact top 5 here.
""")

code("""
assert np.allclose(table.l2, 2 * table.ip, atol=1e-4) and np.allclose(table.ip, table.cosine, atol=1e-4)
assert (table.rank_l2 == table.rank_ip).all() and (table.rank_ip == table.rank_cosine).all()
assert list(table.hnsw_rank) == list(table["rank"])  # approximate search = exact search on this corpus
print("on unit vectors: l2 = 2 x ip = 2 x cosine, and the three rankings agree")
""")

md("""
They part ways when vectors have different lengths. Below, every chunk vector is stretched by a random
factor between 0.5 and 2, which changes no direction. Cosine only sees directions, so its ranking is
unchanged. The inner product grows with length and now favours long vectors. L2 favours vectors whose
length is close to the query's.
""")

code("""
rows = search.rows(store.get_collection(COLLECTION))  # every chunk's id, text and vector
vectors, ids = rows["matrix"], rows["ids"]
question_vec = encoder.embed(["What is the RAG triad?"])[0]
rng = np.random.default_rng(0)
stretched = vectors * rng.uniform(0.5, 2.0, size=(len(vectors), 1))

def top5(d):
    return [ids[i] for i in search.top_k(d, ids, 5)]

unit, scaled = search.distances(vectors, question_vec), search.distances(stretched, question_vec)
compare = pd.DataFrame({name: [top5(unit[name]) == top5(scaled[name])] for name in ("l2", "ip", "cosine")},
                       index=["same top 5 after stretching?"])
assert compare.loc["same top 5 after stretching?", "cosine"]
assert not compare.loc["same top 5 after stretching?", "ip"]
compare
""")

md("""
That is why many sentence encoders normalise their output, and why, with such an encoder, the choice
of distance does not matter for ranking. For an encoder that does not normalise, pick the distance it
was trained with (`--distance` when the collection is created).
""")

# ------------------------------------------------------------------ 6. chunk size and overlap

md("""
## 6 · Chunk size and overlap

Small chunks make precise vectors but may cut an explanation in half; large ones keep context but
blur topics together and fill the prompt. We index the corpus twice more, with small and large chunks,
and ask five questions whose answer is a known phrase. A question counts as *found* if that phrase is
in the top chunk. (Embeddings of chunks seen before come from the cache.)
""")

code("""
probes = {  # question -> a phrase the right chunk contains
    "How is the LoRA matrix B initialised?": "initialised to zero",
    "How many records are in the Alpaca dataset?": "52,002",
    "What does reciprocal rank fusion add up?": "1 / (60 + rank)",
    "How many tokens can MiniLM read at most?": "256 tokens",
    "What does Chatbot Arena use to compute ratings?": "Elo-style",
}
sizes = {"small (32)": (32, 4), f"default ({CHUNK_SIZE})": (CHUNK_SIZE, OVERLAP), "large (256)": (256, 32)}
rows_ = []
for label, (size, overlap) in sizes.items():
    name = f"{COLLECTION}-{size}"
    built = nbllm.rag.index(CORPUS, name, chunk_size=size, overlap=overlap)
    found_ = [phrase in nbllm.rag.query(q, name, k=1, generate=False).contexts[0] for q, phrase in probes.items()]
    texts = search.rows(store.get_collection(name))["documents"]
    rows_.append({"chunks": label, "count": built.total, "mean tokens": round(np.mean(list(map(encoder.tokens, texts))), 1),
                  "found in top chunk": sum(found_), "of": len(probes)})
chunking = pd.DataFrame(rows_)
assert chunking["count"].is_monotonic_decreasing  # bigger chunks, fewer of them
chunking
""")

md("""
Read the table both ways. Large chunks contain the phrase more often simply because they contain more
text, but they cost more of the prompt and the model must find the answer inside them. Small chunks
are cheap to include but can separate a phrase from the words that match the question. In between is
usually best; measure on your own questions.
""")

# ------------------------------------------------------------------ 7. hybrid and rerank

md("""
## 7 · Hybrid search and re-ranking

Vector search matches meaning; it can miss an exact rare term such as a benchmark's name. Full-text
search (BM25) scores chunks by the query words they contain, rare words weighing more. **Hybrid**
search runs both and fuses the two rankings by **reciprocal rank fusion**: each chunk scores
$\\sum 1/(60 + \\text{rank})$ over the lists it appears in.
""")

code("""
dense = %rag MMLU --collection {COLLECTION} --k {K} --no-generate
hybrid = %rag MMLU --collection {COLLECTION} --k {K} --no-generate --hybrid
bm = search.bm25(store.get_collection(COLLECTION), "MMLU", K)
where = lambda hits: [f"{h['source']} p{h['page']}" if h["page"] else h["source"] for h in hits]
print("dense :", where(dense._hits))
print("BM25  :", where(bm))
print("hybrid:", where(hybrid._hits))
assert dense.sources[0] != "evaluation_benchmarks.pdf"               # meaning alone misses the acronym...
assert bm[0]["source"] == "evaluation_benchmarks.pdf"                # ...the words find it...
assert (hybrid.hits.iloc[0].source, hybrid.hits.iloc[0].page) == ("evaluation_benchmarks.pdf", 1)  # ...fused
""")

md("""
A **re-ranker** takes a second, slower look at the top candidates. A cross-encoder (question and
passage read together) is the usual choice (`--reranker NAME`); without one, nbllm scores each candidate
by how likely the language model finds the question after reading the passage. `retrieval_rank` shows
where each chunk was before re-ranking.
""")

code("""
reranked = %rag How do I merge a LoRA adapter after training? --collection {COLLECTION} --k {K} --rerank --no-generate --model {MODEL}
assert set(reranked.hits.retrieval_rank) <= set(range(1, 3 * K + 1))  # drawn from the top 3K candidates
assert "lora.md" in reranked.sources
reranked.hits[["rank", "retrieval_rank", "source", "score"]]
""")

md("""
Look at what moved. A 135M-parameter language model is a weak judge of relevance, and its likelihoods
are close together: it can push a worse chunk up as easily as a better one. A re-ranker is a model
like any other: measure it on questions with known answers (as in section 6) before you trust it. A
trained cross-encoder usually does much better than a small LM's likelihood.
""")

# ------------------------------------------------------------------ 8. generate

md("""
## 8 · Generate with citations

Without `--no-generate`, `%%rag` puts the numbered chunks and the question into SmolLM2's prompt,
asks for an answer that cites its sources as [n], and generates greedily. Small models often answer
correctly but forget to cite. nbllm does not fake the model's citations: when the answer has no valid
[n], it attributes each answer sentence to the retrieved chunk with the most similar sentence (cosine of
MiniLM embeddings, above a threshold), and marks those citations `by="similarity"`.
""")

code("""
%%rag --collection {COLLECTION} --k {K} --max-new-tokens {MAX_NEW_TOKENS} --out rag_result
How many records does the Alpaca dataset have?
""")

code("""
print("model's answer:", rag_result.answer)
print("cited by", rag_result.cited_by, "->", rag_result.cited_answer)
assert "52,002" in rag_result.answer or "52002" in rag_result.answer
assert rag_result.cited and all(1 <= n <= K for n in rag_result.cited)      # cites a retrieved chunk
assert rag_result.hits.source[rag_result.cited[0] - 1] == "instruction_tuning.md"
rag_result.citations
""")

md("""
The prompt the model saw is on the result, if you want to check exactly what it was given:
""")

code("""
print(rag_result.prompt[:700], "...")
""")

# ------------------------------------------------------------------ 9. explorer

md("""
## 9 · The explorer

`%rag explore` opens a small app over the same backend: type a question and press Enter, move the `k`
slider, switch the distance (other than the collection's own, it searches by brute force), and toggle
hybrid search, re-ranking and answers. Every retrieved text is HTML-escaped, so a document that
contains HTML or a script is shown as text and never runs.
""")

code("""
explorer = %rag explore --collection {COLLECTION}
explorer
""")

code("""
probe = explorer.search("What does groundedness measure?")  # what typing the question does
assert probe.sources[0] == "rag_triad.md" and explorer.results.value.count("nbllm-hit") == explorer.k.value
print(repr(explorer))
""")

# ------------------------------------------------------------------ 10. triad

md("""
## 10 · Evaluating RAG: the triad

A RAG system can fail in three places, and the **RAG triad** scores each:

- *context relevance*: are the retrieved chunks about the question? (the retriever's job)
- *groundedness*: is each sentence of the answer supported by some retrieved chunk? (the generator's)
- *answer relevance*: does the answer address the question?

`%eval triad` scores all three with MiniLM: the mean cosine similarity of the question to each chunk,
the share of answer sentences that have a chunk sentence at least 0.45 similar to them (a threshold
calibrated on a small labeled set by `benchmarks/triad_threshold.py`) and whose numbers all appear in
some chunk, and the cosine of the question to the answer; citation markers like [1] are ignored. (`--judge MODEL` asks a language model instead, as in the evaluation
lab; better, and much slower.) We compare three configurations on the same question: `rag_result`
from section 8 (k = K), the nearest chunk only (k = 1), and a filter that hides the right document.
""")

code("""
question = rag_result.question  # the same question, two more configurations
one_chunk = %rag {question} --collection {COLLECTION} --k 1 --max-new-tokens {MAX_NEW_TOKENS}
wrong_doc = %rag {question} --collection {COLLECTION} --k {K} --max-new-tokens {MAX_NEW_TOKENS} --where source=lora.md
assert one_chunk.question == wrong_doc.question == rag_result.question
for name, r in [("rag_result", rag_result), ("one_chunk", one_chunk), ("wrong_doc", wrong_doc)]:
    print(f"{name:<10} {sorted(set(r.sources))} -> {r.answer}")
""")

md("""
Each variable is one configuration on the leaderboard (a list of results per variable scores several
questions). Sentences marked red are unsupported, with the reason beside them (`low similarity`, or
`number ... not in context`); green ones are supported.
""")

code("""
%eval triad --rag rag_result one_chunk wrong_doc --out triad_scores
""")

code("""
board = triad_scores.leaderboard().set_index("config")
scores = triad_scores.to_pandas()[["context_relevance", "groundedness", "answer_relevance"]]
assert ((scores >= 0) & (scores <= 1)).all().all()                        # every score is in [0, 1]
assert sorted(board.index) == ["one_chunk", "rag_result", "wrong_doc"] and (board.n == 1).all()
assert board.context_relevance["wrong_doc"] < board.context_relevance[["rag_result", "one_chunk"]].min()
for row in triad_scores.rows:
    for (sentence, ok), why in zip(row["sentences"], row["reasons"]):
        print(f"{row['config']:<10} {'supported  ' if ok else 'UNSUPPORTED'} {why:<44} {sentence[:60]!r}")
board.round(3)
""")

md("""
Read the table column by column. Hiding the right document ruins context relevance, but SmolLM2
still answers, and confidently: the answer can sound on topic (high answer relevance) while nothing
retrieved supports it (low groundedness). That is why the triad has three parts; one score alone
would miss it. The nearest chunk alone scores higher context relevance than K chunks (the others are
less related), which says nothing about whether the others were needed. Embedding scores are rough: a
sentence counts as supported when it is *similar* to a chunk sentence, so off-topic claims are caught,
but a sentence with a changed number is a near copy of its chunk (cosine about 0.84 on the calibration
set). That is why the scorer also checks, exactly, that every number a sentence states (1,000 or 1000,
3.5, 50%, "three") appears in some chunk; with that check it rejects every wrong number of the
calibration set, which the cosine alone accepted. A negation or a plausible fact the chunks never
state still slips through (9 of 10 each). Score many questions, and use a judge model for figures you
report.
""")

md("""
To see the number check at work, change the figure in `rag_result`'s answer and score both versions.
The wrong answer is almost as similar to the chunks as the right one; only the number gives it away.
The check asks whether a number is stated at all, not what it is stated about: a figure copied from
the wrong sentence of a chunk (in `wrong_doc`, SmolLM2 may borrow one from the LoRA document) passes
it, and only a low similarity, or a judge, can flag that sentence.
""")

code("""
import copy

wrong_number = copy.copy(rag_result)  # the same question and chunks ...
wrong_number.answer = rag_result.answer.replace("52,002", "5,200").replace("52002", "5200")  # ... a wrong figure
assert wrong_number.answer != rag_result.answer
""")

code("""
%eval triad --rag rag_result wrong_number --out number_check
""")

code("""
rows = {row["config"]: row for row in number_check.rows}
flagged = [why for (s, ok), why in zip(rows["wrong_number"]["sentences"], rows["wrong_number"]["reasons"])
           if "5,200" in s or "5200" in s]
assert flagged and all(why.startswith("number 5") and "not in context" in why for why in flagged)
assert rows["wrong_number"]["groundedness"] < rows["rag_result"]["groundedness"]
print(flagged)
""")

# ------------------------------------------------------------------ exercises

md("""
## 11 · Exercises

Write your answers in the cell marked `# your turn`, run it, then run the check cell below it. The
checks print `pass` or `not yet:` with a hint; they never stop the notebook.

### Exercise 1: cosine distance by hand

For the question `"What is a KV cache?"`, compute the cosine distance between its embedding and the
embedding of the top chunk that `%%rag --exact` returns, with numpy only (`encoder.embed([...])` gives
the vectors). Store it in `my_cosine`.

### Exercise 2: a question that needs hybrid search

Write a question (`my_question`) for which the top chunk of **hybrid** search comes from
`chatbot_arena.txt` while the top chunk of **dense** search does not. Hint: which short name in that
file is rare in the rest of the corpus?
""")

code("""
# your turn
my_cosine = None     # exercise 1: a float
my_question = None   # exercise 2: a string
""")

code("""
def check_exercises():
    lines = []
    try:
        ref = nbllm.rag.query("What is a KV cache?", COLLECTION, k=1, exact=True, generate=False).hits.iloc[0]
        if my_cosine is None:
            lines.append("exercise 1 not yet: set my_cosine. Hint: 1 - q.c / (|q| |c|), with np.linalg.norm")
        elif abs(float(my_cosine) - ref.cosine) > 1e-4:
            lines.append(f"exercise 1 not yet: {float(my_cosine):.4f} is not --exact's cosine. Hint: embed the "
                         "question and the chunk's text with encoder.embed, then 1 - cosine similarity")
        else:
            lines.append(f"exercise 1 pass: cosine distance {ref.cosine:.4f}")
        if not my_question:
            lines.append("exercise 2 not yet: set my_question. Hint: look for a term only that page uses")
        else:
            d = nbllm.rag.query(my_question, COLLECTION, k=1, generate=False).sources[0]
            h = nbllm.rag.query(my_question, COLLECTION, k=1, generate=False, hybrid=True).sources[0]
            if h == "chatbot_arena.txt" and d != "chatbot_arena.txt":
                lines.append("exercise 2 pass: only the full-text half of hybrid search found it")
            else:
                lines.append(f"exercise 2 not yet: dense top = {d}, hybrid top = {h}. Hint: a rare exact term "
                             "helps BM25; a question that means the page's topic helps dense search too much")
    except Exception as err:  # a check reports; it never stops the notebook
        lines.append(f"not yet: {type(err).__name__}: {err}")
    return "\\n".join(lines)


print(check_exercises())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **Load → split → embed → store → retrieve → generate.** Every chunk keeps its source, page and
  offset; its id is a hash of them, so indexing again adds nothing, and a vector cache keyed by model
  and text means unchanged text is never embedded twice.
- **Distances.** Squared L2 (Chroma's default), inner product $1 - q \\cdot c$ and cosine $1 - \\cos$
  rank identically on unit vectors ($\\lVert q-c \\rVert^2 = 2 - 2 q \\cdot c$). On vectors of different
  lengths they disagree, and the inner product favours long vectors.
- **Chunk size and overlap** trade precise vectors against context; measure on your questions.
- **Hybrid search** fuses BM25 and dense rankings by reciprocal rank, so exact rare terms count;
  **re-ranking** looks again at the top candidates with a slower model, and needs measuring too.
- **Citations** number the retrieved chunks. Keep the model's own [n] apart from citations computed
  afterwards.
- **The RAG triad** scores retrieval (context relevance), faithfulness to it (groundedness) and the
  answer (answer relevance); compare configurations on the same questions, never on one score alone.
""")

code("""
for size, _ in sizes.values():
    nbllm.rag.drop(f"{COLLECTION}-{size}")
%rag list
""")


if __name__ == "__main__":
    LAB.write()
