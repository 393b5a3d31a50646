"""Text generation with the prompt template a model was trained with."""

from __future__ import annotations

import torch

from .errors import ConfigError, DataError
from .tokenization import alpaca_prompt


def render_prompt(tokenizer, prompt, template: str) -> tuple[str, bool]:
    """(text, add_special_tokens) for a prompt: a string, an alpaca dict, or a list of messages."""
    if template == "alpaca":
        if isinstance(prompt, dict):
            return alpaca_prompt(prompt.get("instruction", ""), prompt.get("input") or ""), True
        return alpaca_prompt(str(prompt)), True
    if template == "chat":
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
        if not getattr(tokenizer, "chat_template", None):
            return "\n".join(m["content"] for m in messages) + "\n", True
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), False
    return str(prompt), True


def check_settings(max_new_tokens: int, temperature: float) -> None:
    if max_new_tokens <= 0:
        raise ConfigError(f"max_new_tokens must be > 0 (got {max_new_tokens})")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (got {temperature})")


def rendered(tokenizer, prompt, template: str) -> tuple[str, bool]:
    """render_prompt, refusing a prompt with no text."""
    text, special = render_prompt(tokenizer, prompt, template)
    if not text.strip():
        raise DataError("the prompt is empty; give some text to continue")
    return text, special


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompt,
    template: str = "chat",
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 0.95,
    seed: int = 0,
) -> str:
    """The model's continuation of `prompt` (greedy when temperature is 0, else seeded sampling)."""
    check_settings(max_new_tokens, temperature)
    text, special = rendered(tokenizer, prompt, template)
    device = next(model.parameters()).device
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=special).to(device)
    n_prompt = inputs["input_ids"].shape[1]
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if limit and n_prompt + max_new_tokens > limit:
        raise DataError(
            f"the prompt is {n_prompt} tokens; with max_new_tokens={max_new_tokens} it exceeds the "
            f"model's context of {limit}; shorten the prompt or ask for fewer new tokens"
        )
    was_training = model.training
    model.eval()
    sampling = temperature > 0
    extra = (
        {"temperature": temperature, "top_p": top_p}
        if sampling
        else {"temperature": None, "top_p": None, "top_k": None}
    )
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=sampling,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **extra,
        )
    model.train(was_training)
    return tokenizer.decode(out[0, n_prompt:], skip_special_tokens=True).strip()
