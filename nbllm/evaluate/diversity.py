"""Diversity: how different a model's samples for the same prompt are.

Per prompt, N samples come from the model handle's seeded, batched `LM.generate` (the N copies
of the prompt go through one generate call, so each row draws its own tokens; chunk j of a
prompt's samples is seeded with seed * 100003 + 1000 * prompt + j, so a prompt's samples do not
depend on the other prompts or on --limit). Then, over that prompt's samples:

    distinct_1, distinct_2  unique n-grams / all n-grams, pooled over the N samples (Li et al. 2016);
                            words are lowercased \\w+ runs and single punctuation marks; a prompt
                            whose samples hold no n-gram scores 0
    self_bleu               mean over samples of sacrebleu.sentence_bleu(sample, the other N-1
                            samples as references) (Zhu et al. 2018, Texygen), 0-100; higher = more alike
    embedding_distance      mean cosine distance 1 - cos(a, b) over all pairs of samples, embedded by
                            nbllm's Encoder (minilm by default: mean-pooled, unit-length)
    exact_repeats           share of samples that repeat an earlier sample of the same prompt
                            exactly (after stripping spaces): 1 - distinct samples / N

The overall value of a metric is the mean over prompts; its 95% interval is a seeded
percentile bootstrap over prompts (`rounds` resamples). Per-prompt values carry no interval:
resampling one prompt's samples would count the resampled copies as repeats. Several
temperatures and/or models give one row per setting, all on the same prompts and seeds.
"""

from __future__ import annotations

import re

from ..errors import ConfigError, DataError

METRICS = ("distinct_1", "distinct_2", "self_bleu", "embedding_distance", "exact_repeats")
ROUNDS = 1000
_WORD = re.compile(r"\w+|[^\w\s]")


# ---------------------------------------------------------------- metrics


def words(text: str) -> list[str]:
    """Lowercased word runs and single punctuation marks: 'Hi, hi!' -> ['hi', ',', 'hi', '!']."""
    return _WORD.findall(str(text).lower())


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams, pooled over `texts` (0 when they hold no n-gram)."""
    grams = [tuple(ws[i : i + n]) for ws in map(words, texts) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def exact_repeats(texts: list[str]) -> float:
    """Share of texts that repeat an earlier one exactly (after stripping): 1 - distinct / all."""
    if not texts:
        return 0.0
    return 1 - len({t.strip() for t in texts}) / len(texts)


def self_bleu(texts: list[str]) -> float:
    """Mean sentence BLEU (sacrebleu, 0-100) of each text against the others as references."""
    import sacrebleu

    if len(texts) < 2:
        raise DataError("self-BLEU needs at least two samples per prompt; use --samples 2 or more")
    return sum(sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)) / len(texts)


def embedding_distance(vectors) -> float:
    """Mean cosine distance over all pairs of unit-length row vectors (a torch tensor)."""
    import torch

    n = len(vectors)
    if n < 2:
        raise DataError("a pairwise distance needs at least two samples per prompt; use --samples 2 or more")
    cos = vectors @ vectors.T
    upper = torch.triu_indices(n, n, offset=1)
    return float((1 - cos[upper[0], upper[1]]).mean())


def bootstrap(values: list[float], rounds: int = ROUNDS, seed: int = 0) -> tuple[float, float]:
    """Seeded 95% percentile bootstrap interval of the mean (nan for fewer than two values)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# ---------------------------------------------------------------- settings and data


def check_sampling(samples: int, temperature: float, at_least: int = 1) -> None:
    """One ConfigError for sample counts and temperatures that cannot give different samples."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < at_least:
        need = "at least two samples per prompt (diversity compares them)" if at_least > 1 else "samples >= 1"
        raise ConfigError(f"--samples {samples} is too few: this needs {need}; use --samples {max(at_least, 5)}")
    if temperature < 0:
        raise ConfigError(f"--temperature {temperature} is negative; use 0 (greedy) or a value like 0.7")
    if temperature == 0 and samples > 1:
        raise ConfigError(
            f"--temperature 0 is greedy decoding: all {samples} samples of a prompt would be the "
            "same; sample with --temperature > 0 (e.g. 0.7), or use --samples 1"
        )


def temperatures(value) -> list[float]:
    """0.7 or "0.3,0.7,1.0" -> [0.3, 0.7, 1.0]."""
    import math

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = [float(value)]
    else:
        try:
            out = [float(x) for x in str(value).split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--temperature takes numbers like 0.7 or 0.3,0.7,1.0 (got {value})") from None
    if not out or not all(math.isfinite(t) for t in out):
        raise ConfigError(f"--temperature takes finite numbers like 0.7 or 0.3,0.7,1.0 (got {value})")
    return out


def prompts_from(data, limit: int | None = None, what: str = "prompts") -> list[str]:
    """Prompt strings from a list of strings, or records with prompt/question/instruction."""
    from .common import check_limit, load_eval_records
    from .generative import _prompt_of

    check_limit(limit)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, str) for p in data):
        prompts = list(data)
    else:
        prompts = [_prompt_of(r, i) for i, r in enumerate(load_eval_records(data, what), 1)]
    prompts = prompts[:limit] if limit else prompts
    if not prompts or any(not p.strip() for p in prompts):
        raise DataError(f"the {what} are empty (or one is blank); give records with a 'prompt' or a list of strings")
    return prompts


def sample(
    handle,
    prompts: list[str],
    n: int,
    *,
    temperature: float,
    top_p: float = 0.95,
    seed: int = 0,
    max_new_tokens: int = 32,
    template: str | None = None,
    batch_size: int = 8,
    progress: bool = False,
    desc: str = "sample",
) -> list[list[str]]:
    """n samples per prompt through handle.generate: each prompt's copies in batches of batch_size,
    every batch seeded on its own (seed * 100003 + 1000 * prompt + batch)."""
    from tqdm.auto import tqdm

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer (got {batch_size!r}); try 8")
    out = []
    for i, prompt in enumerate(tqdm(prompts, desc=desc, disable=not progress, leave=False)):
        texts = []
        for j, start in enumerate(range(0, n, batch_size)):
            k = min(batch_size, n - start)
            texts += handle.generate(
                [prompt] * k,
                template=template,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed * 100003 + 1000 * i + j,
                batch_size=k,
            )
        out.append(texts)
    return out


def scores(samples: list[str], encoder=None) -> dict:
    """Every metric of one prompt's samples (embedding_distance nan without an encoder)."""
    row = {
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "self_bleu": self_bleu(samples),
        "exact_repeats": exact_repeats(samples),
    }
    row["embedding_distance"] = embedding_distance(encoder.encode(samples)) if encoder is not None else float("nan")
    return row


# ---------------------------------------------------------------- the evaluation


def evaluate(
    models=None,
    data=None,
    *,
    samples: int = 5,
    temperature="0.7",
    top_p: float = 0.95,
    seed: int = 0,
    max_new_tokens: int = 32,
    template: str | None = None,
    limit: int | None = None,
    embedder: str | None = "minilm",
    rounds: int = ROUNDS,
    batch_size: int = 8,
    progress: bool = True,
    label: str | None = None,
):
    """Sample `samples` continuations per prompt for every (model, temperature) setting and score
    their diversity; a DiversityResult with one row per setting (.to_pandas()), .by_prompt()
    and .samples. models: one model (name, folder, LM or result) or a list; temperature: a
    number or a comma list ("0.3,0.7,1.0")."""
    from ..lm import encoder as load_encoder
    from ..lm import resolve
    from ..provenance import attach, flags_of, for_model
    from .leaderboard import record
    from .results import DiversityResult

    flags = flags_of(locals())

    temps = temperatures(temperature)
    for t in temps:
        check_sampling(samples, t, at_least=2)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"--rounds must be a positive integer (got {rounds!r}); try {ROUNDS}")
    if data is None:
        raise DataError("no prompts given; pass --data PATH|VAR (records with 'prompt', or a list of strings)")
    prompts = prompts_from(data, limit)
    handles = [resolve(m) for m in (models if isinstance(models, (list, tuple)) else [models])]
    enc = load_encoder(embedder) if embedder and str(embedder).lower() != "none" else None
    rows, settings = [], []
    for handle in handles:
        for t in temps:
            drawn = sample(
                handle,
                prompts,
                samples,
                temperature=t,
                top_p=top_p,
                seed=seed,
                max_new_tokens=max_new_tokens,
                template=template,
                batch_size=batch_size,
                progress=progress,
                desc=f"diversity {handle.name} T={t:g}",
            )
            per_prompt = [
                {
                    "model": handle.name,
                    "temperature": t,
                    "prompt_id": i,
                    "prompt": p,
                    **scores(texts, enc),
                    "samples": texts,
                }
                for i, (p, texts) in enumerate(zip(prompts, drawn))
            ]
            setting = {"model": handle.name, "temperature": t, "prompts": len(prompts)}
            for m in METRICS:
                values = [r[m] for r in per_prompt]
                low, high = bootstrap(values, rounds, seed) if values[0] == values[0] else (float("nan"),) * 2
                setting.update({m: sum(values) / len(values), f"{m}_low": low, f"{m}_high": high})
            rows += per_prompt
            settings.append(setting)
    if isinstance(label, str):
        name = label
    else:
        name = data if isinstance(data, str) else "prompts"
    result = DiversityResult(name, samples, settings, rows, top_p=top_p, seed=seed, embedder=enc.name if enc else None)
    several = {h.name: for_model(h).get("model_fingerprint") for h in handles} if len(handles) > 1 else None
    attach(
        result,
        model=handles[0] if len(handles) == 1 else None,
        data=prompts,
        seed=seed,
        flags=flags,
        models=several,
        embedder=enc.name if enc else None,
        embedder_fingerprint=for_model(enc).get("model_fingerprint") if enc else None,
    )
    record(result)
    return result
