"""Tokenization for training: prompt templates, the loss mask, and labels shifted by one.

A causal LM at position i predicts token i+1, so the label at position i is input_ids[i+1]
when that next token counts in the loss, else -100 (ignored by cross-entropy). By default
only response tokens count: the model learns to answer, not to echo the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DataError, TemplateError

IGNORE_INDEX = -100

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt template, up to and including '### Response:'."""
    if input and input.strip():
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_NO_INPUT.format(instruction=instruction)


def detect_template(example) -> str:
    """Which template fits an example: messages -> chat, instruction -> alpaca, text -> none."""
    if isinstance(example, str):
        return "none"
    if not isinstance(example, dict):
        raise DataError(f"an example must be a dict or a string, not {type(example).__name__}")
    if "messages" in example:
        return "chat"
    if "instruction" in example or "prompt" in example:
        return "alpaca"
    if "text" in example:
        return "none"
    raise DataError(
        f"cannot tell the format of an example with keys {sorted(example)}; "
        "use instruction/input/output (alpaca), messages (chat) or text"
    )


def _field(example: dict, *names: str, default=None):
    for name in names:
        if name in example and example[name] is not None:
            value = example[name]
            if not isinstance(value, str):
                raise DataError(f"field '{name}' must be a string, not {type(value).__name__}")
            return value
    if default is not None:
        return default
    raise DataError(f"example is missing '{names[0]}' (has {sorted(example)})")


def _messages(example) -> list[dict]:
    if isinstance(example, str):
        return [{"role": "user", "content": example}]
    if "messages" not in example:
        if "instruction" in example or "prompt" in example:
            user = _field(example, "instruction", "prompt")
            extra = _field(example, "input", default="")
            msgs = [{"role": "user", "content": f"{user}\n\n{extra}" if extra else user}]
            answer = _field(example, "output", "response", default="")
            return msgs + ([{"role": "assistant", "content": answer}] if answer else [])
        return [{"role": "user", "content": _field(example, "text")}]
    msgs = example["messages"]
    if not isinstance(msgs, list) or not msgs:
        raise DataError("'messages' must be a non-empty list of {role, content} dicts")
    for m in msgs:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"each message needs a string 'role' and 'content' (got {m!r:.80})")
    return msgs


def segments(example, template: str, tokenizer=None) -> list[tuple[str, bool]]:
    """The example's text as (text, counts_in_loss) pieces under a template."""
    if template == "none":
        text = example if isinstance(example, str) else _field(example, "text")
        return [(text, True)]
    if template == "alpaca":
        if isinstance(example, str):
            return [(alpaca_prompt(example), False)]
        if "messages" in example:
            raise TemplateError("a chat example (messages) cannot use the alpaca template; use --template chat")
        prompt = alpaca_prompt(_field(example, "instruction", "prompt"), _field(example, "input", default=""))
        output = _field(example, "output", "response", default="")
        return [(prompt, False)] + ([(output, True)] if output else [])
    if template == "chat":
        return _chat_segments(_messages(example), tokenizer)
    raise TemplateError(f"unknown template {template!r}; use alpaca, chat or none")


def _chat_segments(messages: list[dict], tokenizer) -> list[tuple[str, bool]]:
    """Render through the tokenizer's chat template; assistant turns count in the loss.

    Each assistant turn is located by rendering the conversation up to it (with the
    generation prompt) and up to its end: the text between is that turn."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise TemplateError("this model's tokenizer has no chat template; use --template alpaca or none")

    def render(msgs, gen=False):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    full = render(messages, gen=messages[-1]["role"] != "assistant")
    pieces, cursor = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start, end = len(render(messages[:i], gen=True)), len(render(messages[: i + 1]))
        if not (full.startswith(render(messages[: i + 1])) and cursor <= start <= end):
            raise TemplateError(
                "this chat template does not render conversations prefix by prefix; use --template alpaca"
            )
        pieces += [(full[cursor:start], False), (full[start:end], True)]
        cursor = end
    pieces.append((full[cursor:], False))
    return [(text, loss) for text, loss in pieces if text]


@dataclass
class Encoded:
    input_ids: list[int]
    loss_mask: list[bool]  # True where this token is a target the loss counts
    template: str
    truncated: bool = False
    labels: list[int] = field(init=False)

    def __post_init__(self):
        self.labels = shift_labels(self.input_ids, self.loss_mask)

    def __len__(self):
        return len(self.input_ids)


def shift_labels(input_ids: list[int], loss_mask: list[bool]) -> list[int]:
    """labels[i] = input_ids[i+1] where token i+1 counts in the loss, else -100; the last is -100."""
    nxt = [tok if keep else IGNORE_INDEX for tok, keep in zip(input_ids[1:], loss_mask[1:])]
    return nxt + [IGNORE_INDEX] if input_ids else []


def encode(
    tokenizer,
    example,
    template: str = "auto",
    max_length: int | None = None,
    train_on_prompt: bool = False,
    add_eos: bool = True,
) -> Encoded:
    """Token ids and loss mask for one example (str or dict) under a template."""
    if template == "auto":
        template = detect_template(example)
    pieces = segments(example, template, tokenizer)
    if not any(text.strip() for text, _ in pieces):
        raise DataError("the example has no text to tokenize")
    ids, mask = _tokenize_pieces(tokenizer, pieces, special=template != "chat")
    eos = tokenizer.eos_token_id
    ends_with_response = pieces[-1][1]
    if add_eos and template != "chat" and eos is not None and ends_with_response and (not ids or ids[-1] != eos):
        ids, mask = ids + [eos], mask + [True]
    if train_on_prompt:
        mask = [True] * len(ids)
    truncated = bool(max_length) and len(ids) > max_length
    if truncated:
        ids, mask = ids[:max_length], mask[:max_length]
    return Encoded(ids, mask, template, truncated)


def _tokenize_pieces(tokenizer, pieces, special: bool) -> tuple[list[int], list[bool]]:
    text = "".join(t for t, _ in pieces)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        bounds, pos = [], 0
        for piece, loss in pieces:
            bounds.append((pos, pos + len(piece), loss))
            pos += len(piece)
        mask = []
        for start, end in enc["offset_mapping"]:
            mask.append(start != end and any(lo <= start < hi and loss for lo, hi, loss in bounds))
        return list(enc["input_ids"]), mask
    ids, mask = [], []  # slow tokenizers: no offsets, so tokenize piece by piece
    for i, (piece, loss) in enumerate(pieces):
        piece_ids = tokenizer(piece, add_special_tokens=special and i == 0)["input_ids"]
        ids += piece_ids
        mask += [loss] * len(piece_ids)
    return ids, mask


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """Each token as readable text (a byte-level piece that is not valid UTF-8 alone shows as U+FFFD)."""
    return [tokenizer.decode([i]) for i in ids]
