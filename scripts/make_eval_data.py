"""Writes nbllm/data/eval_arena_votes.jsonl: 600 simulated pairwise votes among five fictional
models with hidden Bradley-Terry strengths (seeded, so the file is reproducible).

    .venv/bin/python scripts/make_eval_data.py
"""

import json
import random
from pathlib import Path

TRUE = {"cat-13b": 1150, "owl-7b": 1080, "fox-3b": 1000, "bee-1b": 930, "ant-0.5b": 840}


def main() -> None:
    rng = random.Random(2024)
    names = sorted(TRUE)
    out = Path(__file__).resolve().parents[1] / "nbllm" / "data" / "eval_arena_votes.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for _ in range(600):
            a, b = rng.sample(names, 2)
            p_a = 1 / (1 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
            r = rng.random()
            if r < 0.12:  # close calls: a tie, or "both bad" when both models are weak
                winner = "both_bad" if TRUE[a] + TRUE[b] < 1900 and rng.random() < 0.6 else "tie"
            else:
                winner = "a" if rng.random() < p_a else "b"
            f.write(json.dumps({"model_a": a, "model_b": b, "winner": winner}) + "\n")


if __name__ == "__main__":
    main()
