"""Multiple choice by log-likelihood: score each choice as a continuation of the question.

    acc       the choice with the highest summed log-likelihood is the gold one
    acc_norm  the same after dividing each sum by the choice's length in characters
              (lm-evaluation-harness's definition), which removes the bias towards short choices

The prompt (few-shot examples + question) is the same for every choice, so it runs through
the model once: its KV cache is repeated over the choices, and one batched pass scores all
continuations. `naive_logliks` runs one full pass per choice; both give the same numbers.
`batched_logliks` does the same for several questions at once (prompts right-padded into one
pass, then every choice of every question in a second pass over the padded cache).

Two record shapes:
    question  {"question": str, "choices": [str, ...], "answer": int}  (MMLU-like): the prompt is
              shared, each choice is a continuation.
    partial   {"contexts": [str, ...], "continuation": str, "answer": int} (WinoGrande): each choice
              is its own context and the SAME continuation is scored after each ("partial
              evaluation", Trinh & Le 2018), so the log-likelihoods compare the same tokens and
              acc_norm equals acc. Optional "choices" (short labels) and "question" (for display).
Hub benchmarks (MMLU, HellaSwag, TruthfulQA mc1, WinoGrande, ARC) are mapped to these by the
from_* functions below when online.
"""

from __future__ import annotations

import random
import re

from ..errors import ConfigError, DataError, OfflineError
from .common import check_limit, load_eval_records, resolve_model

LETTERS = "ABCDEFGHIJ"
# questions per forward pass in `evaluate`: on 2 CPU cores (smollm2, llm-quiz) 4-16 were alike, 1.3x (3 shots)
# to 1.9x (0 shots) the one-question-at-a-time cached path; benchmarks/eval.py measures it
from ..lm import BATCH_SIZE  # noqa: E402

# name -> (prompt template, continuation template); {lettered} lists the choices as "A. ..."
TEMPLATES = {
    "qa": ("Question: {question}\nAnswer:", " {choice}"),
    "plain": ("{question}", " {choice}"),
    "letters": ("Question: {question}\n{lettered}\nAnswer:", " {letter}"),
}


# ---------------------------------------------------------------- data


def _answer(rec: dict, i: int, n: int) -> int:
    answer = rec.get("answer")
    if isinstance(answer, str) and answer.strip().upper() in LETTERS[:n] and answer.strip():
        answer = LETTERS.index(answer.strip().upper())
    elif isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise DataError(f"record {i} needs 'answer': the index of the right choice (got {answer!r})")
    if not 0 <= answer < n:
        raise DataError(f"record {i}: answer index {answer} is out of range for {n} choices (use 0..{n - 1})")
    return answer


def _strings(value) -> bool:
    """A list of at least 2 non-empty strings."""
    return isinstance(value, list) and len(value) >= 2 and all(isinstance(c, str) and c.strip() for c in value)


def check_record(rec, i: int) -> dict:
    """One record, question-shaped {question, choices, answer} or partial {contexts, continuation,
    answer}; a DataError names what is wrong."""
    if not isinstance(rec, dict):
        raise DataError(f"record {i} is a {type(rec).__name__}, not an object with question/choices/answer")
    if "contexts" in rec:
        return _check_partial(rec, i)
    question, choices = rec.get("question"), rec.get("choices")
    if not isinstance(question, str):
        raise DataError(f"record {i} has no 'question' string (keys: {', '.join(map(str, rec)) or 'none'})")
    if not _strings(choices):
        raise DataError(f"record {i} needs 'choices': a list of at least 2 non-empty strings")
    return {
        "id": rec.get("id", i - 1),
        "question": question,
        "choices": list(choices),
        "answer": _answer(rec, i, len(choices)),
        **({"subject": rec["subject"]} if "subject" in rec else {}),
    }


def _check_partial(rec: dict, i: int) -> dict:
    contexts, continuation = rec["contexts"], rec.get("continuation")
    if not _strings(contexts):
        raise DataError(f"record {i} needs 'contexts': a list of at least 2 non-empty strings, one per choice")
    if not isinstance(continuation, str) or not continuation.strip():
        raise DataError(f"record {i} has 'contexts' but no 'continuation': give the text scored after each context")
    labels = rec.get("choices", contexts)
    if not (isinstance(labels, list) and len(labels) == len(contexts) and all(isinstance(c, str) for c in labels)):
        raise DataError(f"record {i}: 'choices' (labels) must be {len(contexts)} strings, one per context")
    question = rec.get("question")
    continuation = continuation.strip()  # the harness strips it too, then puts one space before it
    return {
        "id": rec.get("id", i - 1),
        "question": question if isinstance(question, str) else "… " + continuation,
        "choices": list(labels),
        "contexts": list(contexts),
        "continuation": continuation,
        "answer": _answer(rec, i, len(contexts)),
    }


def _hellaswag_text(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def from_mmlu(rec: dict) -> dict:
    """cais/mmlu: {question, subject, choices, answer: int}."""
    return {
        "question": rec["question"],
        "choices": list(rec["choices"]),
        "answer": int(rec["answer"]),
        "subject": rec.get("subject", ""),
    }


def from_hellaswag(rec: dict) -> dict:
    """Rowan/hellaswag: the context (activity label + ctx_a + ctx_b) is the question, the endings
    the choices, label the answer (preprocessed as lm-evaluation-harness does)."""
    ctx = rec["ctx_a"] + " " + rec["ctx_b"].capitalize() if "ctx_a" in rec else rec["ctx"]
    return {
        "question": _hellaswag_text(rec["activity_label"] + ": " + ctx),
        "choices": [_hellaswag_text(e) for e in rec["endings"]],
        "answer": int(rec["label"]),
    }


def from_truthfulqa_mc1(rec: dict) -> dict:
    """truthful_qa multiple_choice: mc1_targets has exactly one label 1 among the choices."""
    targets = rec["mc1_targets"]
    return {
        "question": rec["question"],
        "choices": list(targets["choices"]),
        "answer": list(targets["labels"]).index(1),
    }


def from_winogrande(rec: dict) -> dict:
    """winogrande, scored by partial evaluation as lm-evaluation-harness does: each option put in
    the blank, with the sentence up to the blank, is a context; the rest of the sentence, stripped,
    is the shared continuation (the harness puts its target delimiter, one space, before it).

    Checked against lm-evaluation-harness lm_eval/tasks/winogrande/preprocess_winogrande.py
    (partial_context / doc_to_choice: sentence[:idx] + option; partial_target / doc_to_target:
    sentence[idx + 1:].strip()), default.yaml (multiple_input; metric acc only) and api/task.py
    construct_requests (multiple inputs: (context_i, " " + target)); few-shot demos are the gold
    context + " " + target, joined by blank lines (its fewshot_delimiter). One difference: the
    harness encodes context + continuation together and splits at the context's length, `encode`
    encodes them apart; the tokens agree whenever the continuation starts a new token (" was ...")."""
    cut = rec["sentence"].index("_")
    options = [rec["option1"], rec["option2"]]
    return {
        "question": rec["sentence"],
        "choices": options,
        "contexts": [rec["sentence"][:cut] + o for o in options],
        "continuation": rec["sentence"][cut + 1 :].strip(),
        "answer": int(rec["answer"]) - 1,
    }


def from_arc(rec: dict) -> dict:
    """allenai/ai2_arc: choices {text, label}, answerKey a letter (or digit) among the labels."""
    labels = list(rec["choices"]["label"])
    return {
        "question": rec["question"],
        "choices": list(rec["choices"]["text"]),
        "answer": labels.index(rec["answerKey"]),
    }


# short name -> (hub id, config, split, mapping)
HUB = {
    "mmlu": ("cais/mmlu", "all", "test", from_mmlu),
    "hellaswag": ("Rowan/hellaswag", None, "validation", from_hellaswag),
    "truthfulqa_mc1": ("truthfulqa/truthful_qa", "multiple_choice", "validation", from_truthfulqa_mc1),
    "winogrande": ("allenai/winogrande", "winogrande_xl", "validation", from_winogrande),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test", from_arc),
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test", from_arc),
}
_BY_ID = {hub: name for name, (hub, *_rest) in HUB.items()}


def load_hub(name: str) -> list[dict]:
    """A well-known benchmark from the hub, mapped to the MMLU-like schema (needs a network)."""
    hub_id, config, split, mapping = HUB[_BY_ID.get(name, name)]
    from ..models import hub_reachable

    if not hub_reachable():
        raise OfflineError(
            f"benchmark '{name}' lives on the Hugging Face hub ({hub_id}), which cannot be "
            "reached; nbllm is offline by default: use a JSON/JSONL file or the shipped 'llm-quiz'"
        )
    try:
        import datasets

        rows = datasets.load_dataset(hub_id, config, split=split).to_list()
    except Exception as err:  # offline, gated, renamed
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise OfflineError(
            f"could not load '{hub_id}' ({reason}); use a local file or the shipped 'llm-quiz'"
        ) from None
    return [mapping(r) for r in rows]


def load_mc(source, limit: int | None = None) -> list[dict]:
    """Checked records from a path, variable, shipped set, or a hub benchmark name."""
    check_limit(limit)
    if isinstance(source, str) and (source in HUB or source in _BY_ID):
        records = load_hub(source)
    else:
        records = load_eval_records(source)
    if not records:
        raise DataError("the question set is empty; give at least one {question, choices, answer} record")
    records = records[:limit] if limit else records
    return [check_record(rec, i) for i, rec in enumerate(records, 1)]


# ---------------------------------------------------------------- prompts


def render(rec: dict, template: str) -> tuple[str, list[str]]:
    """(prompt text, one continuation per choice) for a question record under a template."""
    if "contexts" in rec:
        raise ConfigError("a record with 'contexts' (WinoGrande-style) has one prompt per choice; use mc.requests")
    if template in TEMPLATES:
        prompt_t, cont_t = TEMPLATES[template]
    elif "{question}" in template:
        prompt_t, cont_t = template, " {choice}"
    else:
        raise ConfigError(f"unknown template {template!r}; use {', '.join(TEMPLATES)} or a string with {{question}}")
    lettered = "\n".join(f"{LETTERS[j]}. {c}" for j, c in enumerate(rec["choices"]))
    prompt = prompt_t.format(question=rec["question"], lettered=lettered)
    conts = [cont_t.format(choice=c, letter=LETTERS[j]) for j, c in enumerate(rec["choices"])]
    return prompt, conts


def render_pairs(rec: dict, template: str) -> list[tuple[str, str]]:
    """(context, continuation) per choice. A partial record is a plain sentence: its contexts as they
    are, then a space (the harness's target delimiter) and the shared continuation."""
    if "contexts" not in rec:
        prompt, conts = render(rec, template)
        return [(prompt, c) for c in conts]
    if template not in ("qa", "plain"):
        raise ConfigError(
            f"template {template!r} needs question records; records with 'contexts' "
            "(WinoGrande-style) are scored as plain sentences: use the default template or plain"
        )
    return [(c, " " + rec["continuation"]) for c in rec["contexts"]]


def requests(rec: dict, pool: list[dict], shots: int, template: str, seed: int) -> list[tuple[str, str]]:
    """(context, continuation) per choice, after `shots` other solved questions chosen with a seed
    (a solved question is its gold context + continuation; blank lines between them)."""
    pairs = render_pairs(rec, template)
    if not shots:
        return pairs
    others = [r for r in pool if r["id"] != rec["id"]]
    if len(others) < shots:
        raise ConfigError(f"--shots {shots} needs {shots} other questions; the set has {len(others)}")
    demos = random.Random(f"{seed}/{rec['id']}").sample(others, shots)
    head = "".join("".join(render_pairs(d, template)[d["answer"]]) + "\n\n" for d in demos)
    return [(head + ctx, cont) for ctx, cont in pairs]


def build_prompt(rec: dict, pool: list[dict], shots: int, template: str, seed: int) -> tuple[str, list[str]]:
    """The few-shot prompt for one question record and its continuations (see `requests`)."""
    render(rec, template)  # a question record, a known template
    pairs = requests(rec, pool, shots, template, seed)
    return pairs[0][0], [cont for _, cont in pairs]


# ---------------------------------------------------------------- scoring
# the kernels live with the model handle (nbllm/lm.py); mc, perplexity and the LM re-ranker share them
from ..lm import _check_batch_size, batched_logliks, cached_logliks, encode, encode_pairs, naive_logliks  # noqa: E402,F401,E501


def evaluate(
    model=None,
    data="llm-quiz",
    *,
    shots: int = 0,
    template: str = "qa",
    limit: int | None = None,
    seed: int = 0,
    method: str = "cached",
    batch_size: int = BATCH_SIZE,
    progress: bool = True,
    name: str | None = None,
    label: str | None = None,
):
    """Score a multiple-choice set; returns an MCResult (.score: acc, acc_norm; .details).

    method: cached (shared prefix once, `batch_size` questions per forward pass) or naive (one full
    pass per choice, the reference). name / label: how the model / the data are called on the leaderboard."""
    from ..provenance import attach, flags_of
    from .leaderboard import record

    flags = flags_of(locals())
    from .results import MCResult

    if not isinstance(shots, int) or shots < 0:
        raise ConfigError(f"shots must be an integer >= 0 (got {shots!r})")
    if method not in ("cached", "naive"):
        raise ConfigError(f"method must be cached or naive (got {method!r})")
    _check_batch_size(batch_size)
    records = load_mc(data, limit)
    pool = records if not shots else load_mc(data)  # demos may come from beyond --limit
    lm, tok, model_name = resolve_model(model)
    limit_ctx = getattr(lm.config, "max_position_embeddings", None)
    encoded = []
    for rec in records:
        pairs = encode_pairs(tok, requests(rec, pool, shots, template, seed))
        longest = max(len(ctx) + len(cont) for ctx, cont in pairs)
        if limit_ctx and longest > limit_ctx:
            raise DataError(
                f"question {rec['id']} with {shots} shots is {longest} tokens, over the model's "
                f"context of {limit_ctx}; use fewer --shots"
            )
        encoded.append(pairs)
    from tqdm.auto import tqdm

    with tqdm(total=len(encoded), desc=f"mc {model_name}", disable=not progress, leave=False) as bar:
        if method == "cached":
            logliks = batched_logliks(lm, encoded, batch_size, on_group=bar.update)
        else:
            logliks = []
            for pairs in encoded:
                logliks.append([naive_logliks(lm, ctx, [cont])[0] for ctx, cont in pairs])
                bar.update(1)
    rows = []
    for rec, pairs, lls in zip(records, encoded, logliks):
        partial = "contexts" in rec
        for j, (choice, ll, (_, ids)) in enumerate(zip(rec["choices"], lls, pairs)):
            # partial records score the same continuation for every choice: normalising by its length
            # leaves the pick unchanged, so acc_norm = acc there
            length = len(rec["continuation"]) if partial else len(choice)
            rows.append(
                {
                    "question_id": rec["id"],
                    "choice": j,
                    "text": choice,
                    "loglik": ll,
                    "n_tokens": len(ids),
                    "length": length,
                    "loglik_norm": ll / length,
                    "correct": j == rec["answer"],
                }
            )
    result = MCResult(name or model_name, label or _data_name(data), rows, records, shots, template)
    attach(result, model=lm, name=result.model, data=records, seed=seed, flags=flags)
    record(result)
    return result


def _data_name(data) -> str:
    return data if isinstance(data, str) else "data"
