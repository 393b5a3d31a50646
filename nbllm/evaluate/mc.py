"""Multiple choice by log-likelihood: score each choice as a continuation of the question.

    acc       the choice with the highest summed log-likelihood is the gold one
    acc_norm  the same after dividing each sum by the choice's length in characters
              (lm-evaluation-harness's definition), which removes the bias towards short choices

The prompt (few-shot examples + question) is the same for every choice, so it runs through
the model once: its KV cache is repeated over the choices, and one batched pass scores all
continuations. `naive_logliks` runs one full pass per choice; both give the same numbers.

Records use an MMLU-like schema: {"question": str, "choices": [str, ...], "answer": int}.
Hub benchmarks (MMLU, HellaSwag, TruthfulQA mc1, WinoGrande, ARC) are mapped to it by the
from_* functions below when online.
"""

from __future__ import annotations

import random
import re

from ..errors import ConfigError, DataError, OfflineError
from .common import check_limit, load_eval_records, resolve_model

LETTERS = "ABCDEFGHIJ"
# name -> (prompt template, continuation template); {lettered} lists the choices as "A. ..."
TEMPLATES = {
    "qa": ("Question: {question}\nAnswer:", " {choice}"),
    "plain": ("{question}", " {choice}"),
    "letters": ("Question: {question}\n{lettered}\nAnswer:", " {letter}"),
}


# ---------------------------------------------------------------- data

def check_record(rec, i: int) -> dict:
    """One record in the schema {question, choices, answer}; a DataError names what is wrong."""
    if not isinstance(rec, dict):
        raise DataError(f"record {i} is a {type(rec).__name__}, not an object with question/choices/answer")
    question, choices, answer = rec.get("question"), rec.get("choices"), rec.get("answer")
    if not isinstance(question, str):
        raise DataError(f"record {i} has no 'question' string (keys: {', '.join(map(str, rec)) or 'none'})")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip()
                                                                     for c in choices):
        raise DataError(f"record {i} needs 'choices': a list of at least 2 non-empty strings")
    if isinstance(answer, str) and answer.strip().upper() in LETTERS[:len(choices)] and answer.strip():
        answer = LETTERS.index(answer.strip().upper())
    elif isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise DataError(f"record {i} needs 'answer': the index of the right choice (got {answer!r})")
    if not 0 <= answer < len(choices):
        raise DataError(f"record {i}: answer index {answer} is out of range for {len(choices)} choices "
                        f"(use 0..{len(choices) - 1})")
    return {"id": rec.get("id", i - 1), "question": question, "choices": list(choices), "answer": answer,
            **({"subject": rec["subject"]} if "subject" in rec else {})}


def _hellaswag_text(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def from_mmlu(rec: dict) -> dict:
    """cais/mmlu: {question, subject, choices, answer: int}."""
    return {"question": rec["question"], "choices": list(rec["choices"]), "answer": int(rec["answer"]),
            "subject": rec.get("subject", "")}


def from_hellaswag(rec: dict) -> dict:
    """Rowan/hellaswag: the context (activity label + ctx_a + ctx_b) is the question, the endings
    the choices, label the answer (preprocessed as lm-evaluation-harness does)."""
    ctx = rec["ctx_a"] + " " + rec["ctx_b"].capitalize() if "ctx_a" in rec else rec["ctx"]
    return {"question": _hellaswag_text(rec["activity_label"] + ": " + ctx),
            "choices": [_hellaswag_text(e) for e in rec["endings"]], "answer": int(rec["label"])}


def from_truthfulqa_mc1(rec: dict) -> dict:
    """truthful_qa multiple_choice: mc1_targets has exactly one label 1 among the choices."""
    targets = rec["mc1_targets"]
    return {"question": rec["question"], "choices": list(targets["choices"]),
            "answer": list(targets["labels"]).index(1)}


def from_winogrande(rec: dict) -> dict:
    """winogrande: the sentence up to the blank is the question; each option followed by the rest
    of the sentence is a choice."""
    cut = rec["sentence"].index("_")
    before, after = rec["sentence"][:cut].strip(), rec["sentence"][cut + 1:]
    return {"question": before, "choices": [rec["option1"] + after, rec["option2"] + after],
            "answer": int(rec["answer"]) - 1}


def from_arc(rec: dict) -> dict:
    """allenai/ai2_arc: choices {text, label}, answerKey a letter (or digit) among the labels."""
    labels = list(rec["choices"]["label"])
    return {"question": rec["question"], "choices": list(rec["choices"]["text"]),
            "answer": labels.index(rec["answerKey"])}


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
        raise OfflineError(f"benchmark '{name}' lives on the Hugging Face hub ({hub_id}), which cannot be "
                           "reached; nbllm is offline by default: use a JSON/JSONL file or the shipped 'llm-quiz'")
    try:
        import datasets

        rows = datasets.load_dataset(hub_id, config, split=split).to_list()
    except Exception as err:  # offline, gated, renamed
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise OfflineError(f"could not load '{hub_id}' ({reason}); use a local file or the shipped "
                           "'llm-quiz'") from None
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
    """(prompt text, one continuation per choice) for a record under a template."""
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


def build_prompt(rec: dict, pool: list[dict], shots: int, template: str, seed: int) -> tuple[str, list[str]]:
    """The few-shot prompt for one question: `shots` other solved questions, chosen with a seed."""
    prompt, conts = render(rec, template)
    if shots:
        others = [r for r in pool if r["id"] != rec["id"]]
        if len(others) < shots:
            raise ConfigError(f"--shots {shots} needs {shots} other questions; the set has {len(others)}")
        demos = random.Random(f"{seed}/{rec['id']}").sample(others, shots)
        solved = []
        for d in demos:
            d_prompt, d_conts = render(d, template)
            solved.append(d_prompt + d_conts[d["answer"]])
        prompt = "\n\n".join(solved + [prompt])
    return prompt, conts


def encode(tokenizer, prompt: str, conts: list[str]) -> tuple[list[int], list[list[int]]]:
    """Token ids of the prompt and of each continuation (trailing prompt spaces move to the choice)."""
    stripped = prompt.rstrip(" ")
    moved = prompt[len(stripped):]
    ctx = tokenizer(stripped).input_ids
    cont_ids = [tokenizer(moved + c, add_special_tokens=False).input_ids for c in conts]
    if not ctx:
        raise DataError("a question renders to an empty prompt; give it some text")
    if any(not c for c in cont_ids):
        raise DataError("a choice encodes to no tokens; give every choice some text")
    return ctx, cont_ids


# ---------------------------------------------------------------- scoring

def _device(model):
    return next(model.parameters()).device


def cached_logliks(model, ctx: list[int], conts: list[list[int]]) -> list[float]:
    """Summed log-likelihood of each continuation: the prompt runs once, its KV cache is repeated
    over the choices, and one batched pass (right-padded) scores every continuation."""
    import torch

    dev = _device(model)
    with torch.no_grad():
        out = model(torch.tensor([ctx], device=dev), use_cache=True, logits_to_keep=1)
        first = out.logits[0, -1].float().log_softmax(-1)
        sums = [float(first[c[0]]) for c in conts]
        width = max(len(c) for c in conts) - 1
        if width > 0:  # the rest of each continuation, predicted from its own earlier tokens
            cache = out.cache if hasattr(out, "cache") else out.past_key_values  # transformers 5.2x renamed it
            cache.batch_repeat_interleave(len(conts))
            rows = torch.tensor([c[:-1] + [c[-1]] * (width - len(c) + 1) for c in conts], device=dev)
            kw = {"cache": cache} if hasattr(out, "cache") else {"past_key_values": cache}
            logp = model(rows, use_cache=False, **kw).logits.float().log_softmax(-1)
            for i, c in enumerate(conts):
                if len(c) > 1:
                    target = torch.tensor(c[1:], device=dev)
                    sums[i] += float(logp[i, :len(c) - 1].gather(-1, target[:, None]).sum())
    return sums


def naive_logliks(model, ctx: list[int], conts: list[list[int]]) -> list[float]:
    """The reference: one full forward pass over prompt + choice for every choice."""
    import torch

    dev = _device(model)
    sums = []
    with torch.no_grad():
        for c in conts:
            ids = torch.tensor([ctx + c], device=dev)
            # only the logits that predict the choice (a fair baseline: no wasted vocabulary projection)
            logp = model(ids, logits_to_keep=len(c) + 1).logits[0, :-1].float().log_softmax(-1)
            sums.append(float(logp[torch.arange(len(c), device=dev), torch.tensor(c, device=dev)].sum()))
    return sums


def evaluate(model=None, data="llm-quiz", *, shots: int = 0, template: str = "qa", limit: int | None = None,
             seed: int = 0, method: str = "cached", progress: bool = True, name: str | None = None,
             label: str | None = None):
    """Score a multiple-choice set; returns an MCResult (.score: acc, acc_norm; .details).

    name / label: how the model / the data are called on the leaderboard."""
    from .leaderboard import record
    from .results import MCResult

    if not isinstance(shots, int) or shots < 0:
        raise ConfigError(f"shots must be an integer >= 0 (got {shots!r})")
    if method not in ("cached", "naive"):
        raise ConfigError(f"method must be cached or naive (got {method!r})")
    records = load_mc(data, limit)
    pool = records if not shots else load_mc(data)  # demos may come from beyond --limit
    lm, tok, model_name = resolve_model(model)
    score = cached_logliks if method == "cached" else naive_logliks
    limit_ctx = getattr(lm.config, "max_position_embeddings", None)
    rows = []
    from tqdm.auto import tqdm

    for rec in tqdm(records, desc=f"mc {model_name}", disable=not progress, leave=False):
        prompt, conts = build_prompt(rec, pool, shots, template, seed)
        ctx, cont_ids = encode(tok, prompt, conts)
        longest = len(ctx) + max(len(c) for c in cont_ids)
        if limit_ctx and longest > limit_ctx:
            raise DataError(f"question {rec['id']} with {shots} shots is {longest} tokens, over the model's "
                            f"context of {limit_ctx}; use fewer --shots")
        logliks = score(lm, ctx, cont_ids)
        for j, (choice, ll, ids) in enumerate(zip(rec["choices"], logliks, cont_ids)):
            rows.append({"question_id": rec["id"], "choice": j, "text": choice, "loglik": ll,
                         "n_tokens": len(ids), "length": len(choice), "loglik_norm": ll / len(choice),
                         "correct": j == rec["answer"]})
    result = MCResult(name or model_name, label or _data_name(data), rows, records, shots, template)
    record(result)
    return result


def _data_name(data) -> str:
    return data if isinstance(data, str) else "data"
