"""Generation with retrieved context: a prompt with numbered chunks, an answer that cites
them as [n], and honest citations when the model gives none.

Citations the model wrote are kept as `by="model"`. If the answer has no valid [n], nbllm does
not invent any in the model's name: each answer sentence is attributed to the retrieved chunk
that holds the most similar sentence (or is most similar as a whole), if the cosine similarity
of their embeddings reaches a threshold, and recorded as `by="similarity"`.
"""

from __future__ import annotations

import re

import numpy as np

from ..text import sentences

INSTRUCTION = (
    "Answer the user's question in one or two sentences using only the numbered sources. End each "
    "sentence with the number of its source in brackets, for example: Paris is the capital of France [2]."
)
CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
SIMILARITY_THRESHOLD = 0.5


def build_prompt(question: str, contexts: list[str], template: str = "chat", max_chars: int | None = None):
    """The instruction as a system message (chat) or the Alpaca instruction, then the numbered
    sources and the question. (SmolLM2-135M answered best this way among the layouts we tried.)"""
    sources = "\n\n".join(
        f"[{n}] {' '.join(text.split())[:max_chars] if max_chars else ' '.join(text.split())}"
        for n, text in enumerate(contexts, 1)
    )
    user = f"Sources:\n{sources}\n\nQuestion: {question.strip()}"
    if template == "alpaca":
        return {"instruction": INSTRUCTION, "input": user}
    if template == "chat":
        return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}]
    return f"{INSTRUCTION}\n\n{user}\nAnswer:"


def model_citations(answer: str, n_contexts: int) -> list[dict]:
    """Valid [n] markers in the answer, one row per (sentence, n)."""
    rows = []
    for sentence in sentences(answer):
        for group in CITE.findall(sentence):
            for n in (int(x) for x in group.split(",")):
                if 1 <= n <= n_contexts and not any(r["n"] == n and r["sentence"] == sentence for r in rows):
                    rows.append({"sentence": sentence, "n": n, "similarity": None, "by": "model"})
    return rows


def similarity_citations(answer: str, contexts: list[str], embed, threshold: float = SIMILARITY_THRESHOLD):
    """Each answer sentence -> the context holding the most similar sentence (cosine of
    embeddings), if that similarity reaches the threshold."""
    sents = [s for s in sentences(answer) if len(s.split()) >= 3]
    if not sents or not contexts:
        return []
    pieces = [(n, s) for n, text in enumerate(contexts) for s in [text, *sentences(" ".join(text.split()))]]
    a, c = embed([CITE.sub("", s) for s in sents]), embed([s for _, s in pieces])
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    owner = np.array([n for n, _ in pieces])
    rows = []
    for s, row in zip(sents, a @ c.T):
        best = int(np.argmax(row))
        if row[best] >= threshold:
            rows.append(
                {
                    "sentence": s,
                    "n": int(owner[best]) + 1,
                    "similarity": round(float(row[best]), 4),
                    "by": "similarity",
                }
            )
    return rows


def with_markers(answer: str, citations: list[dict]) -> str:
    """The answer with [n] after each sentence that a similarity citation attributes."""
    added = {}
    for r in citations:
        if r["by"] == "similarity":
            added.setdefault(r["sentence"], []).append(r["n"])
    if not added:
        return answer
    out = []
    for s in sentences(answer):
        marks = "".join(f"[{n}]" for n in added.get(s, []))
        if marks:
            s = s[:-1] + f" {marks}" + s[-1] if s[-1] in ".!?" else f"{s} {marks}"
        out.append(s)
    return " ".join(out)


def token_counter(lm=None, embedder=None):
    """(count(texts) -> total tokens, tokenizer name): the generator's tokenizer when there is one
    (lm: nbllm.rag's (model, tokenizer, template, name)), else the embedder's."""
    if lm is not None:
        tokenizer = lm[1]
        return (
            lambda texts: sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts),
            lm[3],
        )
    return (lambda texts: sum(embedder.tokens(t) for t in texts)), embedder.name


def answer(
    model, tokenizer, question: str, contexts: list[str], template: str = "chat", max_new_tokens: int = 64
) -> tuple[str, str]:
    """(prompt text, answer) from a causal LM, greedy; long sources are cut to fit the context."""
    from ..generation import generate, render_prompt

    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 2048
    max_chars = None
    while True:
        prompt = build_prompt(question, contexts, template, max_chars)
        text = render_prompt(tokenizer, prompt, template)[0]
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if n + max_new_tokens + 32 <= limit or (max_chars is not None and max_chars <= 80):
            break
        max_chars = int(max(80, (max_chars or max(map(len, contexts))) * 0.7))
    return text, generate(model, tokenizer, prompt, template=template, max_new_tokens=max_new_tokens)
