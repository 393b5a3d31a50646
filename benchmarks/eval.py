"""Evaluation speed: cached-prefix multiple choice against the naive loop, and the judge cache.

    mc     the same few-shot questions (shipped llm-quiz, 4 multi-token choices each) scored on
           smollm2 two ways in one process: nbllm runs the shared prompt once and repeats its
           KV cache over the choices; the baseline runs one full forward pass per choice
           (computing only the logits it needs). Both must give the same log-likelihoods.
           Batched: the same questions `--batch-size` at a time (prompts right-padded into one
           pass, every choice of every question in a second pass over the padded KV cache).
           lm-evaluation-harness (the bench extra) as the baseline: its HF backend (HFLM) over the
           same loaded model scores the same (context, " choice") requests with loglikelihood();
           its per-choice sums must agree with the batched path's within 1e-4 and give the same
           acc and acc_norm. Its batch size is `--lm-eval-batch-size` (default 1, the harness's
           own default and its fastest here: smollm2, 3 shots, 2 CPU cores gave 0.50 questions/s
           at 1, 0.24 at 8, 0.43 at 32 requests). Skipped in one line without lm_eval.
    judge  smollm2 as judge on the shipped judge-responses: first run (generates every reply)
           against a rerun that reads the on-disk cache. The model is loaded before either.

Prints:
    bench eval mc_questions_per_s_nbllm / _naive / _ratio   (target ratio >= 2 on 2 CPU cores)
    bench eval mc_max_abs_loglik_diff                       (<= 1e-4)
    bench eval mc_batched_questions_per_s / _ratio (vs naive) / mc_batched_over_cached_ratio
    bench eval mc_batched_max_abs_loglik_diff               (<= 1e-4, against naive)
    bench eval mc_questions_per_s_lm_eval / mc_questions_per_s_ratio_vs_lm_eval   (batched over the
                                                            harness; target >= 2)
    bench eval mc_max_abs_loglik_diff_vs_lm_eval            (<= 1e-4, batched against the harness)
    bench eval judge_first_s / judge_rerun_s / judge_cache_speedup   (target speedup >= 50)

    python benchmarks/eval.py [--quick] [--shots 3] [--questions 40] [--batch-size 8] [--lm-eval-batch-size 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from nbllm.evaluate import judge, mc
from nbllm.evaluate.common import resolve_model


def time_mc(lm, tok, records, shots, score):
    prompts = [mc.encode(tok, *mc.build_prompt(rec, records, shots, "qa", seed=0)) for rec in records]
    score(lm, *prompts[0])  # warm-up
    start = time.perf_counter()
    out = [score(lm, ctx, conts) for ctx, conts in prompts]
    return len(prompts) / (time.perf_counter() - start), out


def time_batched(lm, tok, records, shots, batch_size):
    questions = [mc.encode_pairs(tok, mc.requests(rec, records, shots, "qa", seed=0)) for rec in records]
    mc.batched_logliks(lm, questions[:batch_size], batch_size)  # warm-up
    start = time.perf_counter()
    out = mc.batched_logliks(lm, questions, batch_size)
    return len(questions) / (time.perf_counter() - start), out


def max_diff(ours, ref):
    return max(abs(a - b) for xs, ys in zip(ours, ref) for a, b in zip(xs, ys))


def lm_eval_missing() -> str | None:
    """None when lm-evaluation-harness's HF backend imports, else why not."""
    try:
        import lm_eval.models.huggingface  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - not installed, or an install that does not import
        return f"{type(exc).__name__}: {exc}"
    return None


def time_lm_eval(lm, tok, records, shots, batch_size):
    """lm-evaluation-harness's HFLM over the same model: loglikelihood() on the same requests."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    harness = HFLM(pretrained=lm, tokenizer=tok, batch_size=batch_size)
    questions = [
        [
            Instance("loglikelihood", doc={}, arguments=pair, idx=j)
            for j, pair in enumerate(mc.requests(rec, records, shots, "qa", seed=0))
        ]
        for rec in records
    ]
    harness.loglikelihood(questions[0], disable_tqdm=True)  # warm-up
    flat = [inst for q in questions for inst in q]
    start = time.perf_counter()
    lls = iter(ll for ll, _greedy in harness.loglikelihood(flat, disable_tqdm=True))
    qps = len(questions) / (time.perf_counter() - start)
    return qps, [[next(lls) for _ in q] for q in questions]


def accuracies(records, logliks) -> tuple[float, float]:
    """(acc, acc_norm) as the harness defines them (acc_norm: per character of the choice)."""

    def argmax(xs):
        return max(range(len(xs)), key=xs.__getitem__)

    acc = sum(argmax(lls) == rec["answer"] for rec, lls in zip(records, logliks))
    norm = sum(
        argmax([ll / len(c) for ll, c in zip(lls, rec["choices"])]) == rec["answer"]
        for rec, lls in zip(records, logliks)
    )
    return acc / len(records), norm / len(records)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="8 questions, 4 judged records")
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--judged", type=int, default=12, help="records of judge-responses (2 responses each)")
    parser.add_argument("--batch-size", type=int, default=mc.BATCH_SIZE, help="questions per forward pass")
    parser.add_argument(
        "--lm-eval-batch-size",
        type=int,
        default=1,
        help="lm-evaluation-harness HFLM batch size (requests per pass; its default is 1)",
    )
    args = parser.parse_args()
    n_q, n_j = (8, 4) if args.quick else (args.questions, args.judged)
    torch.manual_seed(0)
    lm, tok, _ = resolve_model("smollm2")
    pool = mc.load_mc("llm-quiz")
    records = pool[:n_q]
    naive_qps, naive = time_mc(lm, tok, records, args.shots, mc.naive_logliks)
    ours_qps, ours = time_mc(lm, tok, records, args.shots, mc.cached_logliks)
    batched_qps, batched = time_batched(lm, tok, records, args.shots, args.batch_size)
    diff = max_diff(ours, naive)
    print(f"bench eval mc_questions_per_s_nbllm {ours_qps:.2f}")
    print(f"bench eval mc_questions_per_s_naive {naive_qps:.2f}")
    print(f"bench eval mc_questions_per_s_ratio {ours_qps / naive_qps:.2f}")
    print(f"bench eval mc_max_abs_loglik_diff {diff:.2e}")
    print(f"bench eval mc_batched_questions_per_s {batched_qps:.2f}")
    print(f"bench eval mc_batched_questions_per_s_ratio {batched_qps / naive_qps:.2f}")
    print(f"bench eval mc_batched_over_cached_ratio {batched_qps / ours_qps:.2f}")
    print(f"bench eval mc_batched_max_abs_loglik_diff {max_diff(batched, naive):.2e}")
    missing = lm_eval_missing()
    if missing:
        print(f"bench eval lm_eval_baseline skipped: needs lm-eval ({missing}; pip install -e '.[bench]')")
    else:
        harness_qps, harness = time_lm_eval(lm, tok, records, args.shots, args.lm_eval_batch_size)
        harness_diff = max_diff(batched, harness)
        ours_acc, harness_acc = accuracies(records, batched), accuracies(records, harness)
        assert harness_diff <= 1e-4, f"nbllm and lm-evaluation-harness disagree by {harness_diff:.2e}"
        assert ours_acc == harness_acc, f"(acc, acc_norm) nbllm {ours_acc} vs lm-evaluation-harness {harness_acc}"
        print(f"bench eval mc_questions_per_s_lm_eval {harness_qps:.2f}")
        print(f"bench eval mc_questions_per_s_ratio_vs_lm_eval {batched_qps / harness_qps:.2f}")
        print(f"bench eval mc_max_abs_loglik_diff_vs_lm_eval {harness_diff:.2e}")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "judge.sqlite"
        start = time.perf_counter()
        first = judge.evaluate("judge-responses", "smollm2", limit=n_j, cache_path=cache, progress=False)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        again = judge.evaluate("judge-responses", "smollm2", limit=n_j, cache_path=cache, progress=False)
        rerun_s = time.perf_counter() - start
    assert repr(first) == repr(again) and again.n_cached == len(again.rows)
    print(f"bench eval judge_first_s {first_s:.3f}")
    print(f"bench eval judge_rerun_s {rerun_s:.4f}")
    print(f"bench eval judge_cache_speedup {first_s / rerun_s:.0f}")


if __name__ == "__main__":
    main()
