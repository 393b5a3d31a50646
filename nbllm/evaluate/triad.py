"""The RAG triad for %%rag results: context relevance, groundedness, answer relevance.

    context relevance  are the retrieved contexts about the question?
    groundedness       is each sentence of the answer supported by some context?
    answer relevance   does the answer address the question?

Two scorers: embeddings (minilm cosine similarity; a sentence counts as supported when its
best match among the context sentences reaches `threshold` and the contexts state every number
in it) or a judge model (`judge=`, 0-100 replies rescaled to 0-1, cached like %eval judge).
Citation markers ([1], [2, 3]) and list markers ("1.", "2)") are taken out of answer sentences
before either scorer sees them, and kept in what is shown. Each sentence comes with the reason
it is (not) supported: "number 650 not in context (similarity 0.84)", "low similarity 0.31 < 0.45".

Embedding groundedness measures whether a sentence is *on topic* for the context, not whether
the context supports it: a sentence with a wrong figure is a near copy of the chunk (cosine ~0.84).
So the embedding scorer adds one exact check: a sentence that states a number (1,000; 3.5; 50%;
2e-5; "two".."twelve") that no retrieved chunk states is unsupported, whatever its cosine. On the
calibration set (benchmarks/triad_threshold.py) the scorer rejects every off-topic sentence and
every wrong number (the cosine alone: none of the wrong numbers), and accepts every supported
sentence, figures restated as 52002 or "3" included, but it still accepts 9 of 10 contradictions
and 9 of 10 plausible facts the context never states. Use a judge for groundedness figures you
report.

Results are duck-typed: anything with .question, .contexts (list of str), .answer and an
optional .config dict. A result without an answer (%%rag --no-generate) is an error; an empty
answer (a model that stopped at once) scores 0 groundedness and 0 answer relevance, so it still
counts on the leaderboard.

What a result cost rides along: its .latency (seconds; a dict with "total", or a number) and
.context_tokens (tokens of the contexts the generator was given) become each row's latency_s and
context_tokens, None for a result without them (results from before them, hand-made ones; NaN in
to_pandas()), and the leaderboard averages them beside the three scores.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from ..errors import ConfigError, DataError
from ..text import sentences  # noqa: F401 - the one sentence splitter

# minilm cosine at which a sentence counts as supported by a context sentence. Calibrated with
# benchmarks/triad_threshold.py on nbllm/data/eval_groundedness.jsonl (80 labeled rows, balanced),
# with the number check: 0.45 has the best accuracy of the 0.30..0.90 sweep, 0.775 (F1 0.816; the
# cosine alone: 0.637), against 0.762 at the old 0.6 and 0.69 leave-one-context-out (chance: 0.5);
# any value from 0.30 to 0.65 is within 3 rows.
THRESHOLD = 0.45
_CITATIONS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")  # [1], [2, 3]; [1][2] is two of them
_LEADING_CITATIONS = re.compile(r"(?:\[\d+(?:\s*,\s*\d+)*\]\s*)+")
_ORDINAL = re.compile(r"^\s*\(?\d{1,2}[.)]\s+")  # "1. ", "2) ", "(3) " opening a sentence
_SOURCE_REF = re.compile(r"\bsources?\s+\d+(?:\s*(?:,|and)\s*\d+)*", re.IGNORECASE)  # "source 2": not a figure
_NUMBER_WORDS = {
    w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())
}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# A figure: 1,000 or 1 000 (groups of three), 42, 3.5, 2e-5, not preceded by a letter, digit or dot
# (GSM8K, v1.5); optionally followed by a scale word. Or a whole number word (not "fifty-two").
_NUMBER = re.compile(
    r"(?<![\w.])(?P<figure>(?:\d{1,3}(?:(?:,|[ \u00a0\u202f])\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d{1,3})?)(?!\d)"
    r"(?:\s+(?P<scale>thousand|million|billion|trillion)\b)?"
    r"|(?<![\w-])(?:" + "|".join(_NUMBER_WORDS) + r")(?![\w-])",
    re.IGNORECASE,
)

CONTEXT_PROMPT = (
    "Given the question `{question}`, score how relevant the context `{context}` is to answering it "
    "on a scale from 0 to 100, where 100 is fully relevant. Respond with the number only."
)
GROUNDED_PROMPT = (
    "Given the context `{context}`, score how well the statement `{sentence}` is supported by the "
    "context on a scale from 0 to 100, where 100 is fully supported. Respond with the number only."
)
ANSWER_PROMPT = (
    "Given the question `{question}`, score how relevant the answer `{answer}` is on a scale from 0 "
    "to 100, where 100 answers the question fully. Respond with the number only."
)


def numbers(text: str, context: bool = False) -> list[tuple[str, list[tuple[Decimal, ...]]]]:
    """Each figure in `text`: (as written, its readings). A reading is a tuple of values (Decimals,
    so 3.0 == 3 and 1,000 == 1000 == 1e3; a unit such as % or percent is dropped), and the
    figure is stated by a text that states every value of one of its readings: "1 000" may be one
    number or two ("sizes 64 128"), "65 thousand" is 65000 or 65. Digits inside words (GSM8K, L2,
    v1.5) are names, not figures. Number words count from two (one is mostly a pronoun), and from
    zero on the context side, where being generous only makes the check miss, never flag."""
    found = []
    for m in _NUMBER.finditer(text):
        written, word = m.group(), m.group().lower()
        if word in _NUMBER_WORDS:
            if context or _NUMBER_WORDS[word] > 1:
                found.append((written, [(Decimal(_NUMBER_WORDS[word]),)]))
            continue
        groups = re.split(r"[ \u00a0\u202f]", m.group("figure"))
        joined = Decimal("".join(groups).replace(",", ""))
        readings = [(joined,)] + ([tuple(Decimal(g.replace(",", "")) for g in groups)] if len(groups) > 1 else [])
        if m.group("scale"):
            readings.insert(0, (joined * _SCALES[m.group("scale").lower()],))
        found.append((written, readings))
    return found


def missing_numbers(sentence: str, contexts: list[str]) -> list[str]:
    """The figures of `sentence` (as written) that none of `contexts` states. Embeddings cannot see
    them: "65 thousand" and "650 thousand" parameters are the same sentence to MiniLM."""
    known = {v for c in contexts for _, readings in numbers(c, context=True) for r in readings for v in r}
    claims = numbers(_SOURCE_REF.sub("", _ORDINAL.sub("", sentence)))
    return list(dict.fromkeys(w for w, readings in claims if not any(set(r) <= known for r in readings)))


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def strip_citations(sentence: str) -> str:
    """The sentence without its [n] markers: they are not claims, and only add noise to a score."""
    return re.sub(r"\s+([.!?,;:])", r"\1", _CITATIONS.sub("", sentence)).strip()


def answer_sentences(answer: str) -> list[tuple[str, str]]:
    """(as written, as scored) for each sentence of an answer. Markers written after the full stop
    ("... at zero. [2] Then ...") go back to the sentence they cite; a sentence that is nothing
    but markers claims nothing and is dropped. A list marker ("1. ") is not scored either."""
    shown = []
    for s in sentences(answer):
        lead = _LEADING_CITATIONS.match(s)
        if lead and shown:
            shown[-1] = f"{shown[-1]} {lead.group().strip()}"
            s = s[lead.end() :].strip()
        if strip_citations(s):
            shown.append(s)
    return [(s, _ORDINAL.sub("", strip_citations(s))) for s in shown]


UNSHOWN_DEFAULTS = {"strategy": "direct"}  # settings a label leaves out at their default (labels from before them)


def config_label(result, keys=None) -> str:
    """`name` if the config has one, else key=value pairs: the given keys, or every key that is set."""
    config = getattr(result, "config", None)
    if not config:
        return "default"
    if isinstance(config, dict):
        if "name" in config:
            return str(config["name"])
        shown = {
            k: v
            for k, v in config.items()
            if (k in keys if keys else v is not None and v is not False and UNSHOWN_DEFAULTS.get(k) != v)
        }
        text = json.dumps(shown, sort_keys=True, default=str, separators=(",", "="))[1:-1].replace('"', "")
        return text or "default"
    return str(config)


def config_labels(results) -> list[str]:
    """One label per result. A %%rag config holds every setting (collection, k, distance, hybrid, ...),
    so results that differ in a few settings are labelled by those only (k=1 vs k=4)."""
    dicts = [r.config for r in results if isinstance(getattr(r, "config", None), dict) and "name" not in r.config]
    keys = set().union(*dicts) if dicts else set()
    varying = {k for k in keys if len({json.dumps(d.get(k), sort_keys=True, default=str) for d in dicts}) > 1}
    return [config_label(r, varying) for r in results]


def as_results(rag) -> list:
    """A list of RAG results from one result, a list/tuple of them, or a {label: result} dict."""
    if isinstance(rag, dict) and not hasattr(rag, "question"):
        items = []
        for label, res in rag.items():
            items.extend(_Labelled(r, str(label)) for r in as_results(res))
        return items
    results = list(rag) if isinstance(rag, (list, tuple)) else [rag]
    if not results:
        raise DataError("no RAG results given; pass a %%rag result, a list of them or a dict label -> result")
    for i, res in enumerate(results, 1):
        missing = [a for a in ("question", "contexts", "answer") if not hasattr(res, a)]
        if missing:
            raise DataError(
                f"item {i} ({type(res).__name__}) has no .{', .'.join(missing)}; pass %%rag results "
                "(made with --out VAR)"
            )
        if not isinstance(res.contexts, (list, tuple)) or not all(isinstance(c, str) for c in res.contexts):
            raise DataError(f"item {i}: .contexts must be a list of strings")
        if res.answer is None:
            raise DataError(
                f"item {i} has no answer (made with --no-generate?); groundedness and answer relevance "
                "need one: run %%rag without --no-generate"
            )
        if not isinstance(res.answer, str):
            raise DataError(f"item {i}: .answer is a {type(res.answer).__name__}, not text; pass %%rag results")
    return results


class _Labelled:
    """A RAG result seen under an explicit configuration label."""

    def __init__(self, result, label: str):
        self.question, self.contexts, self.answer = result.question, list(result.contexts), result.answer
        self.latency, self.context_tokens = getattr(result, "latency", None), getattr(result, "context_tokens", None)
        self.config = {"name": label}


def _non_negative(value) -> float | None:
    """value as a finite number >= 0, else None (a bool, a string or a negative is no figure)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value != float("inf") else None


def latency_of(result) -> float | None:
    """A result's total latency in seconds (.latency["total"], or .latency as a number); None when it
    has none (results from before latencies, hand-made ones) or it is not a number."""
    value = getattr(result, "latency", None)
    return _non_negative(value.get("total") if isinstance(value, dict) else value)


def context_tokens_of(result) -> int | None:
    """A result's .context_tokens (tokens of the contexts given to the generator); None without it."""
    value = _non_negative(getattr(result, "context_tokens", None))
    return int(value) if value is not None and value.is_integer() else None


# ---------------------------------------------------------------- embedding scorer


def minilm_embed(texts: list[str]):
    """Unit-length all-MiniLM-L6-v2 embeddings (mean pooling), as a torch tensor."""
    from ..lm import encoder

    return encoder("minilm").encode(texts)


def _embedding_scores(res, embed, threshold: float) -> dict:
    """Also returns `support` (each answer sentence's best cosine to a context sentence), `missing`
    (its figures that no context states) and `reasons` (why each sentence is or is not supported)."""
    pairs = answer_sentences(res.answer)
    shown, answer_sents = [s for s, _ in pairs], [s for _, s in pairs]
    ctx_sents = [s for c in res.contexts for s in sentences(c)] or [""]
    texts = [res.question, strip_citations(res.answer), *res.contexts, *answer_sents, *ctx_sents]
    vecs = embed(texts)
    q, a = vecs[0], vecs[1]
    n_ctx = len(res.contexts)
    ctx = vecs[2 : 2 + n_ctx]
    sent = vecs[2 + n_ctx : 2 + n_ctx + len(answer_sents)]
    pieces = vecs[2 + n_ctx + len(answer_sents) :]
    context_rel = float((ctx @ q).clamp(min=0).mean()) if n_ctx else 0.0
    support = (sent @ pieces.T).max(-1).values.tolist() if n_ctx and len(answer_sents) else [0.0] * len(answer_sents)
    missing = [missing_numbers(s, res.contexts) for s in answer_sents]
    marks = [(s, v >= threshold and not m) for s, v, m in zip(shown, support, missing)]
    reasons = [
        f"number{'s' if len(m) > 1 else ''} {_listed(m)} not in context (similarity {v:.2f})"
        if m
        else f"low similarity {v:.2f} < {threshold:.2f}"
        if v < threshold
        else f"similarity {v:.2f}"
        for v, m in zip(support, missing)
    ]
    return {
        "context_relevance": context_rel,
        "answer_relevance": max(0.0, float(a @ q)),
        "sentences": marks,
        "support": support,
        "missing": missing,
        "reasons": reasons,
    }


# ---------------------------------------------------------------- judge scorer


def _judge_scores(res, ask) -> dict:
    context_scores = [ask(CONTEXT_PROMPT.format(question=res.question, context=c)) for c in res.contexts]
    joined = "\n\n".join(res.contexts)
    marks, reasons = [], []
    for shown, scored in answer_sentences(res.answer):
        value = ask(GROUNDED_PROMPT.format(context=joined, sentence=scored))
        marks.append((shown, value is not None and value >= 50))
        reasons.append(
            "judge gave no score" if value is None else f"judge score {value:g}" + (" < 50" if value < 50 else "")
        )
    answer = ask(ANSWER_PROMPT.format(question=res.question, answer=strip_citations(res.answer)))
    known = [v for v in context_scores if v is not None]
    return {
        "context_relevance": sum(known) / len(known) / 100 if known else float("nan"),
        "answer_relevance": answer / 100 if answer is not None else float("nan"),
        "sentences": marks,
        "reasons": reasons,
    }


def evaluate(
    rag,
    *,
    judge=None,
    url: str | None = None,
    api_key_env: str | None = "OPENAI_API_KEY",
    threshold: float | None = None,
    embed=None,
    cache_path=None,
    progress: bool = True,
):
    """Triad scores per RAG result (and a leaderboard per configuration); a TriadResult.
    threshold: the embedding cosine for a supported sentence (default THRESHOLD)."""
    from tqdm.auto import tqdm

    from ..provenance import attach, flags_of
    from .judge import JudgeCache, ModelJudge, make_judge, parse_score
    from .leaderboard import record

    flags = flags_of(locals(), drop=("judge",))
    from .results import TriadResult

    threshold = THRESHOLD if threshold is None else threshold
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1] (got {threshold})")
    results = as_results(rag)
    if judge is not None:
        judge_obj = make_judge(judge, url, api_key_env)
        store = JudgeCache(cache_path)

        def ask(prompt):
            key = JudgeCache.key(judge_obj.id, prompt)
            reply = store.get_many([key]).get(key)
            if reply is None:
                reply = judge_obj.ask(prompt)
                store.put(key, judge_obj.id, reply)
            return parse_score(reply)

        scorer = f"judge:{judge_obj.name}"
    else:
        embed = embed or minilm_embed
        scorer = "minilm" if embed is minilm_embed else "embeddings"
    rows = []
    labels = config_labels(results)
    for res, label in zip(tqdm(results, desc=f"triad {scorer}", disable=not progress, leave=False), labels):
        scores = _judge_scores(res, ask) if judge is not None else _embedding_scores(res, embed, threshold)
        if not res.answer.strip():  # an empty answer claims nothing and answers nothing: 0, not skipped
            scores["answer_relevance"] = 0.0
        marks = scores["sentences"]
        rows.append(
            {
                "config": label,
                "question": res.question,
                "answer": res.answer,
                "context_relevance": scores["context_relevance"],
                "groundedness": sum(ok for _, ok in marks) / len(marks) if marks else 0.0,
                "answer_relevance": scores["answer_relevance"],
                "sentences": marks,
                "reasons": scores["reasons"],
                "unsupported": [s for s, ok in marks if not ok],
                "latency_s": latency_of(res),
                "context_tokens": context_tokens_of(res),
            }
        )
    result = TriadResult(scorer, rows)
    weights = (
        judge_obj.model
        if judge is not None and isinstance(judge_obj, ModelJudge) and not isinstance(judge_obj.model, str)
        else None
    )
    attach(
        result,
        model=weights,
        name=scorer,
        flags=flags,
        data=[
            {"question": r.question, "answer": r.answer, "contexts": list(getattr(r, "contexts", None) or [])}
            for r in results
        ],
    )
    record(result)
    return result
