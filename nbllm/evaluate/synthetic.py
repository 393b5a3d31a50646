"""Synthetic in-context-learning tasks with exact answers and a context-length knob.

These are the probes used to test sequence models (and sub-quadratic attention replacements)
on what attention is good at: recalling, copying, reversing and tracking state over a long
context. Every record is generated from a seed, so the same call gives the same records.

    make_task(name, n=..., context_length=..., seed=...) -> list of records
        {"prompt": str, "answer": str, "task": name, "context_length": int, ...}
    score_generations(records, outputs) -> {"exact_match", "item_accuracy", "n", "correct"}

Tasks and what `context_length` counts (always *items*, never tokens):

    mqar         multi-query associative recall: context_length key-value pairs ("kxb:7"),
                 then `queries` of the keys (default 4, at most context_length); the answer is
                 their values in query order, space-separated ("7 2 9 1")
    copy         context_length letters; the answer repeats them in order
    palindrome   context_length letters; the answer is the sequence reversed (alias: reverse)
    state        a counter modulo 10 starts at a digit and is updated by context_length
                 operations ("+3", "-7"); the answer is the final digit
    permutation  five letters in a row, then context_length swaps of two positions ("swap 1 4",
                 1-based); the answer is the final row, space-separated

Items are space-separated so every tokenizer splits them the same way. A record also keeps
the structure it was built from (e.g. "pairs"/"queries") so a training script can use it.
`shots` prepends that many solved examples (same task and length, other items) to each
prompt, for in-context learning with a pretrained model.
"""

from __future__ import annotations

import random
import re
import string

from ..errors import ConfigError, DataError

TASKS = ("mqar", "copy", "palindrome", "state", "permutation")
ALIASES = {"reverse": "palindrome", "associative-recall": "mqar", "recall": "mqar"}
LETTERS = string.ascii_lowercase
KEY_LETTERS = "bcdfghjklmnpqrstvwxz"  # consonants: keys never spell a word that primes an answer
MAX_KEYS = len(KEY_LETTERS) ** 3  # 8000 distinct three-letter keys
ROW = "abcde"  # the objects that `permutation` shuffles

INSTRUCTIONS = {
    "mqar": "Each key is followed by its value. Give the value of each queried key, in order.",
    "copy": "Repeat the sequence exactly.",
    "palindrome": "Write the sequence in reverse order.",
    "state": "Start from the first digit and apply each operation modulo 10. Give the final digit.",
    "permutation": "Apply each swap (positions counted from 1) to the row. Give the final row.",
}


def tasks() -> tuple[str, ...]:
    """The task names make_task accepts (aliases: reverse, recall)."""
    return TASKS


def canonical(name: str) -> str:
    """The task name behind an alias; a ConfigError for an unknown one."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ConfigError(f"unknown synthetic task {name!r}; use one of {', '.join(TASKS)}")
    return key


def make_task(
    name: str, n: int = 32, context_length: int = 8, seed: int = 0, *, queries: int = 4, shots: int = 0
) -> list[dict]:
    """`n` records of task `name`, each with `context_length` items (see the module docstring).

    Deterministic: the same (name, n, context_length, seed, queries, shots) gives the same list,
    and record i does not depend on n (so a longer run extends a shorter one)."""
    task = canonical(name)
    for label, value, low in (
        ("n", n, 1),
        ("context_length", context_length, 1),
        ("queries", queries, 1),
        ("shots", shots, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{label} must be an integer >= {low} (got {value!r})")
    if task == "mqar" and context_length > MAX_KEYS:
        raise ConfigError(
            f"mqar has {MAX_KEYS} distinct keys; use context_length <= {MAX_KEYS} (got {context_length})"
        )
    records = []
    for i in range(n):
        rng = random.Random(f"nbllm-synthetic/{task}/{context_length}/{queries}/{seed}/{i}")
        body, answer, extra = _BUILDERS[task](rng, context_length, queries)
        demos = []
        for _ in range(shots):  # solved examples from the same generator, other items
            d_body, d_answer, _ = _BUILDERS[task](rng, context_length, queries)
            demos.append(f"{d_body} {d_answer}")
        prompt = "\n\n".join([INSTRUCTIONS[task], *demos, body])
        records.append(
            {"prompt": prompt, "answer": answer, "task": task, "context_length": context_length, "id": i, **extra}
        )
    return records


def make_sweep(name: str, context_lengths, n: int = 32, seed: int = 0, **kwargs) -> list[dict]:
    """make_task at several context lengths, concatenated (for accuracy-versus-length plots)."""
    lengths = list(context_lengths)
    if not lengths:
        raise ConfigError("give at least one context length")
    return [rec for length in lengths for rec in make_task(name, n=n, context_length=int(length), seed=seed, **kwargs)]


# ---------------------------------------------------------------- the generators


def _keys(rng: random.Random, k: int) -> list[str]:
    chosen = rng.sample(range(MAX_KEYS), k)
    base = len(KEY_LETTERS)
    return ["".join(KEY_LETTERS[(c // base**p) % base] for p in (2, 1, 0)) for c in chosen]


def _mqar(rng, length, queries):
    keys = _keys(rng, length)
    values = [str(rng.randrange(10)) for _ in keys]
    asked = rng.sample(range(length), min(queries, length))
    pairs = " ".join(f"{k}:{v}" for k, v in zip(keys, values))
    body = f"Pairs: {pairs}\nQuery: {' '.join(keys[j] for j in asked)}\nValues:"
    return (
        body,
        " ".join(values[j] for j in asked),
        {"pairs": dict(zip(keys, values)), "queries": [keys[j] for j in asked]},
    )


def _letters(rng, length):
    return [rng.choice(LETTERS) for _ in range(length)]


def _copy(rng, length, _queries):
    seq = _letters(rng, length)
    return f"Sequence: {' '.join(seq)}\nCopy:", " ".join(seq), {"sequence": seq}


def _palindrome(rng, length, _queries):
    seq = _letters(rng, length)
    return f"Sequence: {' '.join(seq)}\nReversed:", " ".join(reversed(seq)), {"sequence": seq}


def _state(rng, length, _queries):
    value = start = rng.randrange(10)
    ops = []
    for _ in range(length):
        step = rng.randrange(1, 10)
        sign = rng.choice("+-")
        value = (value + step if sign == "+" else value - step) % 10
        ops.append(f"{sign}{step}")
    return f"Start: {start}\nOperations: {' '.join(ops)}\nFinal:", str(value), {"start": start, "operations": ops}


def _permutation(rng, length, _queries):
    row = list(ROW)
    swaps = []
    for _ in range(length):
        a, b = sorted(rng.sample(range(len(row)), 2))
        row[a], row[b] = row[b], row[a]
        swaps.append((a + 1, b + 1))
    text = ", ".join(f"swap {a} {b}" for a, b in swaps)
    return f"Row: {' '.join(ROW)}\nSwaps: {text}\nFinal row:", " ".join(row), {"swaps": swaps}


_BUILDERS = {"mqar": _mqar, "copy": _copy, "palindrome": _palindrome, "state": _state, "permutation": _permutation}


# ---------------------------------------------------------------- scoring


def normalize(text: str) -> str:
    """What exact match compares: the first non-empty line, lowercased, with spaces collapsed and
    list punctuation (commas, brackets, a trailing period) dropped."""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    first = re.sub(r"[,\[\]()]", " ", first.lower()).strip().rstrip(".")
    return " ".join(first.split())


def score_generations(records: list[dict], outputs: list[str]) -> dict:
    """Exact match of each output against its record's answer (after `normalize`).

    Returns {"exact_match": mean, "item_accuracy": mean share of answer items right in their
    position, "n": count, "correct": per-record bools}."""
    records, outputs = list(records), list(outputs)
    if not records:
        raise DataError("no records to score; make some with make_task(...)")
    if len(records) != len(outputs):
        raise DataError(f"{len(records)} records but {len(outputs)} outputs; give one output per record")
    correct, items = [], []
    for rec, out in zip(records, outputs):
        if "answer" not in rec:
            raise DataError("a record has no 'answer'; score records made by make_task")
        want, got = normalize(rec["answer"]).split(), normalize(out).split()
        correct.append(want == got)
        items.append(sum(w == g for w, g in zip(want, got)) / len(want) if want else float(not got))
    return {
        "exact_match": sum(correct) / len(correct),
        "item_accuracy": sum(items) / len(items),
        "n": len(correct),
        "correct": correct,
    }


# ---------------------------------------------------------------- with a model


def evaluate(
    model=None,
    task: str = "mqar",
    context_lengths=(8,),
    n: int = 16,
    *,
    seed: int = 0,
    shots: int = 2,
    queries: int = 4,
    template: str | None = None,
    progress: bool = True,
    name: str | None = None,
):
    """Generate greedily for make_task records at each context length and score exact match;
    a SyntheticResult (.by_length(), .plot()). `template` defaults to the one a trained result was
    trained with (an %%sft --format alpaca result answers through the Alpaca template); a model
    that was not trained here continues the raw few-shot prompt ("none", as lm-evaluation-harness
    does without --apply_chat_template)."""
    from tqdm.auto import tqdm

    from ..generation import generate
    from ..provenance import attach, flags_of
    from .leaderboard import record
    from .results import SyntheticResult

    flags = flags_of(locals())

    lengths = [context_lengths] if isinstance(context_lengths, int) else list(context_lengths)
    records = make_sweep(task, lengths, n=n, seed=seed, queries=queries, shots=shots)
    from ..lm import resolve

    handle = resolve(model)
    lm, tok, model_name = handle.model, handle.tokenizer, handle.name
    template = template or (handle.template if handle.trained else "none")
    rows = []
    for rec in tqdm(records, desc=f"{canonical(task)} {model_name}", disable=not progress, leave=False):
        budget = len(tok(" " + rec["answer"], add_special_tokens=False).input_ids) + 4
        out = generate(lm, tok, rec["prompt"], template=template, max_new_tokens=budget)
        scored = score_generations([rec], [out])
        rows.append(
            {
                "id": rec["id"],
                "context_length": rec["context_length"],
                "prompt": rec["prompt"],
                "answer": rec["answer"],
                "output": out,
                "correct": scored["correct"][0],
                "item_accuracy": scored["item_accuracy"],
            }
        )
    result = SyntheticResult(name or model_name, canonical(task), rows, shots)
    attach(result, model=handle, name=result.model, data=records, seed=seed, flags=flags)
    record(result)
    return result
