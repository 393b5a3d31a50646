"""One model handle for scoring and generation: the seam lm-evaluation-harness builds on.

    LM(model, tokenizer, name, template)
        .loglikelihood(pairs)             summed log p(continuation | context) per (context, continuation)
        .loglikelihood_tokens(questions)  the same on token ids, questions sharing a prefix batched
        .loglikelihood_rolling(texts)     summed NLL of whole texts, sliding windows past the context
        .generate(prompts)                continuations under the model's template, seeded
    resolve(x) -> LM                      a registry name, folder, hub id, LM, or any result with .lm

The template travels with the handle: a model trained with --format alpaca is prompted through
the Alpaca template by every consumer (mc, gen, ppl, judge, synthetic, arena, RAG answers),
unless the caller names another. Eval mode, no-grad and the device are handled here once.

Scoring (the shared-prefix KV-cache batching): per question the token prefix its contexts
share runs once, its cache is repeated over the choices, and one pass scores the rest;
several questions go through one right-padded pass (batched_logliks).
"""

from __future__ import annotations

import contextlib

from .errors import ConfigError, DataError, ModelError

BATCH_SIZE = 8  # questions per forward pass (benchmarks/eval.py measures it)
TEMPLATES = ("alpaca", "chat", "none")


class LM:
    """A causal language model, its tokenizer, the name it goes by and the template it was trained with.

    `trained` says the template came from training (an %%sft result): consumers whose own convention
    differs for an untrained model (few-shot tasks continue the raw prompt) still follow it."""

    def __init__(self, model, tokenizer, name: str = "custom", template: str = "chat", *, trained: bool = False):
        if not callable(getattr(model, "generate", None)) or not hasattr(model, "config"):
            raise ModelError(
                f"'{name}' is a {type(model).__name__}, not a causal language model (it cannot "
                "generate); pass smollm2, another causal LM or an %%sft result"
            )
        if template not in TEMPLATES:
            raise ConfigError(f"template {template!r} does not exist; choose one of {', '.join(TEMPLATES)}")
        self.model, self.tokenizer, self.name, self.template = model, tokenizer, name, template
        self.trained = trained

    def __repr__(self) -> str:
        return f"LM(name={self.name!r}, template={self.template!r})"

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def context(self) -> int | None:
        """The longest sequence the model reads (max_position_embeddings), if it says."""
        return getattr(self.model.config, "max_position_embeddings", None)

    @contextlib.contextmanager
    def reading(self):
        """Eval mode and no gradients for the duration, the previous mode restored after."""
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    # scoring ---------------------------------------------------------------
    def loglikelihood(self, pairs: list[tuple[str, str]], batch_size: int = BATCH_SIZE) -> list[float]:
        """Summed log-likelihood of each continuation after its context (harness semantics: the
        context's trailing spaces move to the continuation). Pairs sharing a context are scored
        as one question: the context runs once."""
        if not pairs:
            raise DataError("no (context, continuation) pairs to score")
        groups: dict[str, list[int]] = {}
        for j, (ctx, _) in enumerate(pairs):
            groups.setdefault(ctx, []).append(j)
        questions = [encode_pairs(self.tokenizer, [pairs[j] for j in idx]) for idx in groups.values()]
        scores = self.loglikelihood_tokens(questions, batch_size)
        out: list = [None] * len(pairs)
        for idx, sums in zip(groups.values(), scores):
            for j, value in zip(idx, sums):
                out[j] = value
        return out

    def loglikelihood_tokens(self, questions, batch_size: int = BATCH_SIZE, on_group=None) -> list[list[float]]:
        """batched_logliks on this model: questions = [[(context ids, continuation ids), ...], ...]."""
        self._check_fits(max(len(c) + len(x) for q in questions for c, x in q))
        with self.reading():
            return batched_logliks(self.model, questions, batch_size, on_group)

    def loglikelihood_rolling(
        self, texts: list[str], window: int | None = None, stride: int | None = None
    ) -> list[dict]:
        """Per text: summed NLL over every token after the first, windows of `window` tokens
        `stride` apart (defaults: min(context, 512), half of it); as in perplexity.py."""
        window, stride = self.windows(window, stride)
        out = []
        with self.reading():
            for text in texts:
                ids = self.tokenizer(text).input_ids
                nll, scored, windows = rolling_nll(self.model, ids, window, stride)
                out.append({"tokens": len(ids), "tokens_scored": scored, "windows": windows, "nll_sum": nll})
        return out

    def windows(self, window: int | None = None, stride: int | None = None) -> tuple[int, int]:
        """(window, stride) for rolling scores, checked against the model's context."""
        context = self.context or 1024
        window = min(context, 512) if window is None else window
        stride = max(1, window // 2) if stride is None else stride
        if window < 2 or window > context:
            raise ConfigError(f"window must be between 2 and the model's context {context} (got {window})")
        if not 1 <= stride <= window:
            raise ConfigError(f"stride must be between 1 and the window {window} (got {stride})")
        return window, stride

    # generation --------------------------------------------------------------
    def generate(
        self,
        prompts,
        *,
        template: str | None = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 0.95,
        seed: int = 0,
        batch_size: int = 8,
    ) -> list[str]:
        """The continuation of each prompt (a string, an alpaca dict or a list of messages) under
        `template` (default: the model's own): greedy at temperature 0, else sampling seeded by
        `seed`. Up to `batch_size` prompts go through one left-padded generate call; each batch
        draws from seed + its first prompt's position, so a prompt repeated across batches gets
        fresh samples, not a copy of the first batch's."""
        from .generation import check_settings, generate, rendered

        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        if not prompts:
            raise DataError("no prompts to generate from; give at least one")
        template = template or self.template
        if template not in TEMPLATES:
            raise ConfigError(f"template {template!r} does not exist; choose one of {', '.join(TEMPLATES)}")
        kw = dict(template=template, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        if len(prompts) == 1 or batch_size <= 1:
            return [generate(self.model, self.tokenizer, p, **kw) for p in prompts]
        check_settings(max_new_tokens, temperature)  # the one-prompt path's checks; the context is checked per batch
        out = []
        for start in range(0, len(prompts), batch_size):
            out += self._generate_batch(
                [rendered(self.tokenizer, p, template) for p in prompts[start : start + batch_size]],
                **{**kw, "seed": seed + start},
            )
        return out

    def _generate_batch(self, rendered, *, template, max_new_tokens, temperature, top_p, seed) -> list[str]:
        import torch

        tok = self.tokenizer
        side, pad = tok.padding_side, tok.pad_token
        tok.padding_side = "left"  # the new tokens follow every prompt directly
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        try:
            enc = tok(
                [t for t, _ in rendered], return_tensors="pt", padding=True, add_special_tokens=rendered[0][1]
            ).to(self.device)
        finally:
            tok.padding_side, tok.pad_token = side, pad
        width = enc["input_ids"].shape[1]
        self._check_fits(width + max_new_tokens)
        sampling = temperature > 0
        extra = (
            {"temperature": temperature, "top_p": top_p}
            if sampling
            else {"temperature": None, "top_p": None, "top_k": None}
        )
        with self.reading(), torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            ids = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=sampling,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                eos_token_id=tok.eos_token_id,
                **extra,
            )
        return [tok.decode(row[width:], skip_special_tokens=True).strip() for row in ids]

    def _check_fits(self, n_tokens: int) -> None:
        if self.context and n_tokens > self.context:
            raise DataError(
                f"a request is {n_tokens} tokens, over {self.name}'s context of {self.context}; "
                "shorten it (fewer shots, shorter passages)"
            )


def mean_pool(states, attention_mask):
    """The mean of each row's token states over its real tokens (as sentence-transformers pools)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


class Encoder:
    """A sentence encoder (a transformers encoder model and its tokenizer): mean-pooled, unit-length
    embeddings. Retrieval, the triad and encoder classifiers all pool through mean_pool."""

    def __init__(self, model, tokenizer, name: str = "custom", max_length: int = 256, batch_size: int = 64):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.max_length, self.batch_size = max_length, batch_size

    def encode(self, texts: list[str], normalize: bool = True):
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                batch = batch.to(next(self.model.parameters()).device)
                pooled = mean_pool(self.model(**batch).last_hidden_state, batch["attention_mask"]).float()
                out.append((torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled).cpu())
        return torch.cat(out)


def encoder(name: str = "minilm", max_length: int = 256) -> Encoder:
    """The registered encoder `name` (loaded once per process) as an Encoder."""
    from . import models

    if models.model_kind(name) != models.ENCODER:
        raise ModelError(f"'{name}' is a causal language model, not an encoder; pass minilm or another encoder")
    return Encoder(*models.load_shared(name), name=name, max_length=max_length)


def require_causal(name: str, fix: str) -> None:
    """One ModelError when the registered model `name` is an encoder, not a generator."""
    from . import models

    if models.model_kind(name) != models.CAUSAL_LM:
        raise ModelError(f"'{name}' is an encoder (it makes embeddings), not a causal language model; {fix}")


def resolve(model=None, *, default: str = "smollm2") -> LM:
    """The LM a flag or argument means: None (the default model), a registry name, folder or hub
    id, an LM, or a result that carries one (.lm, or .model and .tokenizer). Named models are
    loaded once per process and shared (scoring and generation never change weights). An
    encoder or a classifier is refused: they cannot generate."""
    from . import models

    if isinstance(model, LM):
        return model
    if model is None or isinstance(model, str):
        name = model or default
        require_causal(name, "pass smollm2, another causal LM or an %%sft result")
        return LM(*models.load_shared(name), name=name, template="chat")
    carried = getattr(model, "lm", None)
    if isinstance(carried, LM):
        return carried
    if hasattr(model, "classes") and hasattr(model, "predict"):
        raise ModelError(
            f"a {type(model).__name__} is a classifier (it predicts labels), not a causal language "
            "model; pass smollm2, another causal LM or an %%sft result"
        )
    inner, tok = getattr(model, "model", None), getattr(model, "tokenizer", None)
    if inner is None or tok is None:
        raise ModelError(
            f"a {type(model).__name__} is not a model result (no .model/.tokenizer); pass a model "
            "name or an %%sft result"
        )
    name = getattr(getattr(model, "config", None), "model", None) or getattr(model, "name", None)
    name = name or getattr(inner.config, "name_or_path", "custom") or "custom"
    template = getattr(model, "template", None)
    return LM(inner, tok, name=name, template=template or "chat", trained=template is not None)


# ---------------------------------------------------------------- kernels


def encode(tokenizer, prompt: str, conts: list[str]) -> tuple[list[int], list[list[int]]]:
    """Token ids of the prompt and of each continuation (trailing prompt spaces move to the choice)."""
    stripped = prompt.rstrip(" ")
    moved = prompt[len(stripped) :]
    ctx = tokenizer(stripped).input_ids
    cont_ids = [tokenizer(moved + c, add_special_tokens=False).input_ids for c in conts]
    if not ctx:
        raise DataError("a question renders to an empty prompt; give it some text")
    if any(not c for c in cont_ids):
        raise DataError("a choice encodes to no tokens; give every choice some text")
    return ctx, cont_ids


def encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """`encode` for (context, continuation) pairs; a context shared by several pairs is encoded once."""
    by_ctx: dict[str, list[int]] = {}
    for j, (ctx, _) in enumerate(pairs):
        by_ctx.setdefault(ctx, []).append(j)
    out: list = [None] * len(pairs)
    for ctx, idx in by_ctx.items():
        ctx_ids, cont_ids = encode(tokenizer, ctx, [pairs[j][1] for j in idx])
        for j, ids in zip(idx, cont_ids):
            out[j] = (ctx_ids, ids)
    return out


def _device(model):
    return next(model.parameters()).device


def _check_batch_size(batch_size) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer (got {batch_size!r}); try {BATCH_SIZE}")


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
                    sums[i] += float(logp[i, : len(c) - 1].gather(-1, target[:, None]).sum())
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


def _shared_len(seqs: list[list[int]]) -> int:
    """Length of the longest token prefix all sequences share."""
    n = min(len(x) for x in seqs)
    for i in range(n):
        if any(x[i] != seqs[0][i] for x in seqs[1:]):
            return i
    return n


def batched_logliks(
    model, questions: list[list[tuple[list[int], list[int]]]], batch_size: int = BATCH_SIZE, on_group=None
) -> list[list[float]]:
    """Summed log-likelihood of every (context ids, continuation ids) pair of several questions.

    Per question, the token prefix its contexts share (the whole prompt for question records, the
    demos and the sentence up to the blank for partial ones) is run once, all but its last token.
    Questions are sorted by length and taken `batch_size` at a time: their prefixes go through one
    right-padded forward pass, the KV cache is repeated over each question's choices, and a second
    pass runs the rest of every choice (last prefix token + context tail + continuation) over the
    padded cache, with an attention mask hiding the padding and positions counted from each
    question's own prefix length. Right padding everywhere keeps every attention row non-empty.
    on_group(n) is called after each group of n questions (a progress bar's update)."""
    import torch

    _check_batch_size(batch_size)
    plans = []
    for pairs in questions:
        run_once = max(_shared_len([ctx for ctx, _ in pairs]) - 1, 0)
        plans.append(
            (
                pairs[0][0][:run_once],
                [(ctx + cont)[run_once:] for ctx, cont in pairs],
                [len(cont) for _, cont in pairs],
            )
        )
    order = sorted(range(len(plans)), key=lambda i: (len(plans[i][0]), max(map(len, plans[i][1]))))
    out: list = [None] * len(plans)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            group = order[start : start + batch_size]
            for i, sums in zip(group, _score_group(model, [plans[i] for i in group])):
                out[i] = sums
            if on_group:
                on_group(len(group))
    return out


def _score_group(model, plans) -> list[list[float]]:
    import torch

    dev = _device(model)
    owner = torch.tensor([g for g, (_, rows, _) in enumerate(plans) for _ in rows], device=dev)
    rows = [r for _, rs, _ in plans for r in rs]
    prefix_len = torch.tensor([len(p) for p, _, _ in plans], device=dev)
    width_p, width = int(prefix_len.max()), max(len(r) for r in rows) - 1
    kw = {}
    if width_p:
        ids = torch.tensor([p + [0] * (width_p - len(p)) for p, _, _ in plans], device=dev)
        seen = torch.arange(width_p, device=dev)[None] < prefix_len[:, None]
        first = seen.clone()
        first[:, 0] = True  # an empty prefix attends to one pad here (and never later): no all-masked row
        out = model(ids, attention_mask=first.long(), use_cache=True, logits_to_keep=1)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values  # transformers 5.2x renamed it
        cache.batch_select_indices(owner)
        kw = {"cache": cache} if hasattr(out, "cache") else {"past_key_values": cache}
        prefix_mask = seen[owner]
    else:
        prefix_mask = torch.zeros(len(rows), 0, dtype=torch.bool, device=dev)
    inputs = torch.tensor([r[:-1] + [0] * (width - len(r) + 1) for r in rows], device=dev)
    row_mask = torch.arange(width, device=dev)[None] < torch.tensor([len(r) - 1 for r in rows], device=dev)[:, None]
    positions = prefix_len[owner][:, None] + torch.arange(width, device=dev)[None]
    logits = model(
        inputs,
        attention_mask=torch.cat([prefix_mask, row_mask], 1).long(),
        position_ids=positions,
        use_cache=False,
        **kw,
    ).logits
    # only the positions that predict a continuation token: the last n of each row
    n_scored = [n for _, _, ns in plans for n in ns]
    row_idx = torch.tensor([i for i, n in enumerate(n_scored) for _ in range(n)], device=dev)
    pos_idx = torch.tensor([len(r) - 1 - n + t for r, n in zip(rows, n_scored) for t in range(n)], device=dev)
    targets = torch.tensor([tok for r, n in zip(rows, n_scored) for tok in r[len(r) - n :]], device=dev)
    logp = logits[row_idx, pos_idx].float().log_softmax(-1).gather(-1, targets[:, None])[:, 0]
    sums = iter(float(x) for x in torch.zeros(len(rows), device=dev).index_add_(0, row_idx, logp))
    return [[next(sums) for _ in ns] for _, _, ns in plans]


def rolling_nll(model, ids: list[int], window: int, stride: int) -> tuple[float, int, int]:
    """(summed NLL, tokens scored, windows) for one token sequence."""
    import torch

    dev = next(model.parameters()).device
    nll, scored, windows, prev_end = 0.0, 0, 0, 0
    with torch.no_grad():
        for begin in range(0, max(1, len(ids)), stride):
            end = min(begin + window, len(ids))
            first_target = max(prev_end, begin + 1)  # new tokens only, and each needs a left neighbour
            if end > first_target:
                x = torch.tensor([ids[begin:end]], device=dev)
                logp = model(x).logits[0, :-1].float().log_softmax(-1)
                pos = torch.arange(first_target - begin - 1, end - begin - 1, device=dev)
                targets = torch.tensor(ids[first_target:end], device=dev)
                nll -= float(logp[pos, targets].sum())
                scored += end - first_target
                windows += 1
            prev_end = end
            if end == len(ids):
                break
    return nll, scored, windows
