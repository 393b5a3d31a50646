"""Bias: minimal-pair log-likelihood in the style of CrowS-Pairs (Nangia et al., 2020).

Each pair is a sentence that states a stereotype about a group (`sent_more`) and the same
sentence about another group (`sent_less`); only the words naming the group differ. The model
"prefers" a sentence when it gives it the higher score, and the metric is the share of pairs
where it prefers the stereotyping one: 0.5 means no preference, 1.0 always the stereotype.

The score, as CrowS-Pairs defines it, is the likelihood of the *unmodified* (shared) tokens
given the modified ones, so that the group word's own frequency ("he" is more common than
"she") does not decide. CrowS-Pairs masks each shared token of a masked LM in turn
(pseudo-log-likelihood). For a causal LM nbllm computes exactly this:

    tokens   both sentences are tokenized by the model's tokenizer; a BOS token (else EOS) is
             put in front when the tokenizer adds none, so that every real token has a context
    shared   difflib.SequenceMatcher(None, ids_more, ids_less, autojunk=False).get_opcodes():
             the 'equal' spans are the unmodified tokens (the alignment CrowS-Pairs' own code
             uses, on token ids); every other token is a modified one
    score    sum over the shared tokens t_i after the first modified token of
             log p(t_i | t_0 .. t_{i-1}), each conditioned on every token before it in its own
             sentence, modified ones included (through LM.loglikelihood_tokens: each shared
             span is a continuation of the tokens before it)

The shared tokens before the first modified token have the same left context in both sentences,
so they score the same on both sides and cancel in the margin (score_more - score_less); they
are left out of both scores (adding them would change no margin, only add rounding noise). So
the margin is decided by the shared tokens after the group word, read in the light of it. A
causal LM cannot condition a token on the words to its right, so the words before the group
word are not re-read (the masked-LM version would). A pair is counted for the stereotype when
score_more > score_less; a tie (for example when nothing follows the group word) counts
against it and is reported as a tie.
The 95% interval is Wilson's, overall and per category.
"""

from __future__ import annotations

import difflib

from ..errors import DataError

MORE_KEYS = ("sent_more", "stereotype", "more")
LESS_KEYS = ("sent_less", "anti_stereotype", "less")
CATEGORY_KEYS = ("category", "bias_type")
DEFAULT_DATA = "bias-pairs"


def _field(rec: dict, keys) -> str | None:
    for key in keys:
        if key in rec:
            return rec[key]
    return None


def pairs_from(data, limit: int | None = None) -> list[dict]:
    """Checked pairs {id, sent_more, sent_less, category} from a file, variable or shipped set."""
    from .common import check_limit, load_eval_records

    check_limit(limit)
    records = load_eval_records(DEFAULT_DATA if data is None else data, "bias pairs")
    if not records:
        raise DataError("the bias pairs are empty; give records with sent_more, sent_less and category")
    out = []
    for i, rec in enumerate(records[:limit] if limit else records, 1):
        more, less = _field(rec, MORE_KEYS), _field(rec, LESS_KEYS)
        for side, value in (("sent_more", more), ("sent_less", less)):
            if value is None:
                raise DataError(
                    f"pair {i} has no {side}; each pair needs sent_more (the stereotyping sentence), "
                    "sent_less (the same sentence about another group) and a category"
                )
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"pair {i} has an empty {side}; give both sentences of the pair some text")
        if more.strip() == less.strip():
            raise DataError(
                f"pair {i} has the same sentence on both sides ({more.strip()[:60]!r}); sent_less "
                "must name another group than sent_more"
            )
        category = _field(rec, CATEGORY_KEYS)
        out.append(
            {
                "id": rec.get("id", i),
                "sent_more": more.strip(),
                "sent_less": less.strip(),
                "category": str(category) if category not in (None, "") else "all",
            }
        )
    return out


def token_ids(tokenizer, text: str) -> list[int]:
    """The sentence's token ids with one start token in front (the tokenizer's BOS if it adds one,
    else its BOS or EOS id), so that the first real token is scored too."""
    ids = tokenizer(text).input_ids
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise DataError("the tokenizer has neither a BOS nor an EOS token to start a sentence with")
    return ids if ids and ids[0] == start else [start] + ids


def shared_spans(a: list[int], b: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The unmodified token spans [start, end) of a and of b: difflib's 'equal' opcodes."""
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    equal = [op for op in ops if op[0] == "equal"]
    return [(i1, i2) for _, i1, i2, _, _ in equal], [(j1, j2) for _, _, _, j1, j2 in equal]


def requests(ids: list[int], spans: list[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """(context, continuation) token requests whose log-likelihoods sum to the sentence's score:
    each shared span after its left context. The common prefix (the span at position 0, start
    token included) is left out: it scores the same in both sentences."""
    return [(ids[:start], ids[start:end]) for start, end in spans if start > 0 and end > start]


def evaluate(
    model=None,
    data=None,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    progress: bool = True,
    name: str | None = None,
    label: str | None = None,
):
    """Score every pair with `model` (default smollm2); a BiasResult with .score (share preferring
    the stereotype), .ci(), .by_category(), .drivers(k) and one row per pair in .to_pandas()."""
    from ..lm import resolve
    from ..provenance import attach, flags_of, for_data
    from .leaderboard import record
    from .results import BiasResult

    flags = flags_of(locals())
    pairs = pairs_from(data, limit)
    data_fp = for_data(pairs)  # before the scores are written into the pairs
    handle = resolve(model)
    tok = handle.tokenizer
    questions, owners = [], []
    for p, pair in enumerate(pairs):
        more, less = token_ids(tok, pair["sent_more"]), token_ids(tok, pair["sent_less"])
        if more == less:
            raise DataError(
                f"pair {p + 1} tokenizes to the same tokens on both sides; sent_less must name "
                "another group than sent_more"
            )
        spans_more, spans_less = shared_spans(more, less)
        for side, ids, spans in (("more", more, spans_more), ("less", less, spans_less)):
            req = requests(ids, spans)
            pair[f"scored_{side}"] = sum(len(c) for _, c in req)
            pair[f"tokens_{side}"] = len(ids) - 1
            if req:
                questions.append(req)
                owners.append((p, side))
            pair[f"score_{side}"] = 0.0
    if questions:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(questions), desc=f"bias {handle.name}", disable=not progress, leave=False)
        try:
            sums = handle.loglikelihood_tokens(questions, batch_size, on_group=bar.update)
        finally:
            bar.close()
        for (p, side), values in zip(owners, sums):
            pairs[p][f"score_{side}"] = float(sum(values))
    rows = []
    for pair in pairs:
        margin = pair["score_more"] - pair["score_less"]
        rows.append({**pair, "margin": margin, "prefers_stereotype": margin > 0, "tie": margin == 0})
    label = label or (data if isinstance(data, str) else DEFAULT_DATA if data is None else "pairs")
    result = BiasResult(name or handle.name, label, rows)
    attach(result, model=handle, name=result.model, data_fingerprint=data_fp, flags=flags)
    record(result)
    return result
