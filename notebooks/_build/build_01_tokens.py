"""Generate notebooks/01_tokens.ipynb (Lab 1: tokens and the next-token objective), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "01_tokens.ipynb"

LAB = Lab("lab01", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 1 · Tokens and the next-token objective

A language model never sees letters or words. It sees a sequence of integer **tokens**, and during
pre-training it learns a single task: predict the next token. This lab makes both ideas concrete
with a real small model, SmolLM2-135M-Instruct, running offline on your CPU.

By the end you will be able to

- read how a tokenizer splits text into subword pieces, and say why rare words cost more tokens;
- explain why the training labels are the inputs shifted by one, and compute the loss yourself from the model's logits;
- show how instruction tuning masks the prompt so that only the response is learned;
- reason about pre-training data mixtures: how many tokens, from which sources, repeated how many times.

The notebook runs top to bottom in about a minute on a laptop CPU. The two exercises at the end are yours.
""")

md("""
## Parameters

The settings the rest of the lab uses. The cell is tagged `parameters`, so papermill can override them.
""")

code("""
MODEL = "smollm2"          # real tokenizer and model: SmolLM2-135M-Instruct, packaged for offline use
BYTE_MODEL = "tiny-llama"  # a tiny random model whose tokenizer has one token per byte
PROMPT = "The capital of France is"
TOP_K = 5
""", tags=["parameters"])

LAB.setup()

# ------------------------------------------------------------------ 1. tokenization

md("""
## 1 · From text to tokens

A tokenizer maps text to ids from a fixed vocabulary (SmolLM2 has 49,152 entries). LLM tokenizers
today mostly use byte-pair encoding (BPE): frequent words become a single token, rarer words are
assembled from smaller pieces, and since the pieces bottom out in single bytes, any text at all can
be encoded. Nothing is ever "out of vocabulary".

`%%tokenize` shows the cell's text the way training sees it. IPython replaces `{MODEL}` in the magic
line with the value of the Python variable `MODEL`. Each chip is one token (alternating shades mark
the boundaries; a leading space belongs to the token after it). Open *ids and labels* for the table.
""")

code("""
%%tokenize --model {MODEL} --out sentence
Language models read text as a sequence of tokens, not letters.
""")

md("""
Nearly every word is one token. Look at the end, though: nbllm appended the tokenizer's
end-of-sequence token `<|im_end|>`, so that the model also learns where a text stops.

Tokenization is lossless: glue the pieces back together (without that special token) and you get
the text back exactly. Let's check, and count characters against tokens.
""")

code("""
import nbllm
from nbllm.api import tokenize  # the script version of %%tokenize

tokenizer = nbllm.load_tokenizer(MODEL)
special = set(tokenizer.all_special_tokens)

text_tokens = [t for t in sentence.tokens if t not in special]
text = "".join(text_tokens)
assert sentence.tokens[-1] == tokenizer.eos_token
assert text == "Language models read text as a sequence of tokens, not letters."
print(f"{len(text)} characters -> {len(text_tokens)} tokens "
      f"({len(text) / len(text_tokens):.1f} characters per token)")
""")

md("""
### Rare and made-up words

The BPE merges were learned from frequent text. A common word is one token; an unusual word falls
apart into pieces, and a word the tokenizer has never seen gets spelled out from fragments. More
tokens per word means more compute per word, and more predictions to get right.
""")

code("""
%%tokenize --model {MODEL} --out rare
The flumbrizzle quanterfied the snorkelwax.
""")

code("""
import pandas as pd


def pieces(word):
    \"\"\"The tokens of a word as it appears mid-sentence, with its leading space.\"\"\"
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return [tokenizer.decode([i]) for i in ids]


words = ["the", "language", "tokenization", "photosynthesis", "Schwarzschild", "flumbrizzle", "snorkelwax"]
word_table = pd.DataFrame({
    "word": words,
    "pieces": [" ".join(repr(p) for p in pieces(w)) for w in words],
    "n_tokens": [len(pieces(w)) for w in words],
})
n_tokens = word_table.set_index("word").n_tokens
assert n_tokens["flumbrizzle"] > n_tokens["the"] and n_tokens["snorkelwax"] > n_tokens["language"]

rare_chars = len("The flumbrizzle quanterfied the snorkelwax.")
rare_tokens = rare.n_tokens - 1  # without the end token
print(f"made-up sentence: {rare_chars} characters -> {rare_tokens} tokens "
      f"({rare_chars / rare_tokens:.1f} characters per token)")
word_table
""")

md("""
### One token per byte

At the other extreme, a tokenizer with no merges at all gives one token per byte. nbllm's
`tiny-llama` (a tiny random model used in tests) has exactly such a byte-level tokenizer. Same sentence:
""")

code("""
%%tokenize --model {BYTE_MODEL} --out byte_view
Language models read text as a sequence of tokens, not letters.
""")

code("""
n_bytes = len(text.encode("utf-8"))
assert byte_view.n_tokens - 1 == n_bytes  # one token per byte, plus the end token
print(f"{MODEL}: {len(text_tokens)} tokens, {BYTE_MODEL}: {n_bytes} tokens, for the same {len(text)} characters")
print(f"BPE makes this sentence {n_bytes / len(text_tokens):.1f}x shorter")

# bytes are not characters: outside ASCII a character takes several bytes
cafe = tokenize("café", model=BYTE_MODEL)
assert cafe.n_tokens - 1 == len("café".encode("utf-8")) == 5
print(cafe.tokens[:-1], "<- 'é' is two bytes; each byte alone is not valid UTF-8 and shows as �")
""")

md("""
That is the trade-off behind vocabulary size. A byte vocabulary is tiny (259 entries here) but makes
sequences about 5x longer (4.8x above), and the cost of attention grows with sequence length. A large BPE
vocabulary shortens sequences at the price of a bigger embedding table and output layer. Remember the
characters-per-token figure: it comes back in section 4, where we turn dataset sizes on disk into tokens.
""")

# ------------------------------------------------------------------ 2. next-token objective

md("""
## 2 · The next-token objective

Pre-training is self-supervised: the text is its own label. At position *i* the model outputs a
distribution over the vocabulary for token *i+1*, so the targets are the inputs **shifted left by one**:

    input_ids:  t0   t1   t2   ...  t(n-2)   t(n-1)
    labels:     t1   t2   t3   ...  t(n-1)   -100

The last position has nothing left to predict, so its label is -100, the value PyTorch's
cross-entropy ignores. In the table below, `label` is the id a position must predict and `predicts`
shows it as text. `in_loss` marks the tokens that *are* targets, so a target shows up as a `label`
one row above the row where it has `in_loss` True. The first token is never a target.
""")

code("""
%%tokenize --model {MODEL} --out passage
Paris is the capital of France. It is famous for the Eiffel Tower and its museums.
""")

code("""
passage.to_pandas().head(6)
""")

code("""
ids, labels = passage.input_ids, passage.labels
for i, label in enumerate(labels):
    if label != -100:
        assert label == ids[i + 1], (i, label, ids[i + 1])
assert labels[-1] == -100 and not passage.loss_mask[0]
print(f"{passage.n_loss_tokens} of {passage.n_tokens} positions have a label, "
      "and every label is the next input id")
""")

md("""
### The loss, by hand

Now the model. `nbllm.load_model` returns a Hugging Face model and its tokenizer. The first call on
a machine builds a local cache from the packaged weights (about 20 s); after that it takes under a
second. The model returns one vector of logits per position, and the training loss is the mean
cross-entropy between those logits and the labels.

One detail trips people up: Hugging Face causal-LM models shift the labels **inside** `forward`.
You pass the *unshifted* `input_ids` as `labels=`, and the model drops the last logit and the first
label itself. Pass labels you have already shifted and they get shifted twice, so the model is
trained to predict two tokens ahead. Nothing raises an error; the model just learns the wrong thing.
Below we apply nbllm's already-shifted labels to the logits ourselves and check that we get the model's own number.
""")

code("""
import math

import torch
import torch.nn.functional as F

model, tokenizer = nbllm.load_model(MODEL)
input_ids = torch.tensor([passage.input_ids], device=model.device)
targets = torch.tensor(passage.labels, device=model.device)  # already shifted, -100 at the end

with torch.no_grad():
    out = model(input_ids, labels=input_ids)  # Hugging Face shifts internally: pass the inputs
logits = out.logits[0].float()               # (positions, vocabulary)
by_hand = F.cross_entropy(logits, targets, ignore_index=-100)

assert abs(by_hand.item() - out.loss.item()) < 1e-4
print(f"logits shape: {tuple(logits.shape)} = (positions, vocabulary size)")
print(f"mean cross-entropy: {by_hand.item():.2f} by hand, {out.loss.item():.2f} from the model (nats per token)")
print(f"perplexity = exp(loss) = {math.exp(by_hand.item()):.1f}")
""")

md("""
**Perplexity** is the exponential of the mean loss: on average, the model is as unsure as if it were
choosing uniformly among that many tokens. Guessing uniformly over all 49,152 tokens would give a loss
of ln 49152 ≈ 10.8. The model does far better because most next tokens follow from the context.
The per-position losses show where the total comes from:
""")

code("""
log_probs = logits.log_softmax(-1)
positions = (targets != -100).nonzero().squeeze(1)
nll = -log_probs[positions, targets[positions]]  # one loss per predicted token
assert torch.allclose(nll.mean(), by_hand, atol=1e-5)  # the loss is their mean

per_token = pd.DataFrame({
    "context ends with": [passage.tokens[i] for i in positions.tolist()],
    "next token": [passage.tokens[i + 1] for i in positions.tolist()],
    "p(next)": nll.neg().exp().numpy().round(3),
    "loss": nll.numpy().round(2),
})
per_token
""")

md("""
Look at the extremes. Where the context pins the next token down, the loss is close to zero:
`' for'` after `' famous'`, and `'iffel'` and `' Tower'` once `' E'` has started the name. The
highest losses come from open choices: that Paris is *famous* at all, and that what comes up is
its *museums*. The final `<|im_end|>` is expensive too. An instruct model expects that token at the
end of a chat turn, not after plain prose. Training lowers the loss of the token that actually came
next, at every position of every document.

### What does the model expect next?

The distribution at the last position is what text generation samples from. Here are the top
predictions after `PROMPT`:
""")

code("""
prompt_ids = tokenizer(PROMPT, return_tensors="pt").input_ids.to(model.device)
with torch.no_grad():
    next_probs = model(prompt_ids).logits[0, -1].float().softmax(-1)
top = next_probs.topk(TOP_K)

top_table = pd.DataFrame({
    "rank": range(1, TOP_K + 1),
    "token": [repr(tokenizer.decode([i])) for i in top.indices.tolist()],
    "probability": [round(p, 3) for p in top.values.tolist()],
})
assert top_table.probability.is_monotonic_decreasing and top_table.probability.sum() <= 1 + 1e-6
print(f"after {PROMPT!r}:")
top_table
""")

md("""
SmolLM2 puts most of the probability on `' Paris'`. The rest goes to continuations that are also
fluent English, such as `' the'` (as in "the capital of France is the city of..."). The model has
learned a distribution over next tokens, not a lookup of facts.
""")

# ------------------------------------------------------------------ 3. loss masks

md("""
## 3 · Loss masks for instruction tuning

Instruction tuning keeps the same objective but changes **which tokens count**. Examples are
prompt/response pairs wrapped in a fixed template. Alpaca, 52,002 instruction/input/output records,
uses "Below is an instruction that describes a task..." with *Instruction*, *Input* and *Response*
sections. We want the model to learn to answer, not to reproduce the template or the user's question.
So prompt positions get the label -100, and only the response enters the loss, plus the end token,
which teaches the model to stop. Grey chips are prompt, green chips are in the loss.
""")

code("""
%%tokenize --model {MODEL} --out alpaca
{"instruction": "Classify the sentiment of this product review as positive or negative.",
 "input": "The battery died after two days and nobody answered my emails.",
 "output": "Negative: the battery failed quickly and support never replied."}
""")

code("""
alpaca_loss = tokenizer.decode([i for i, counted in zip(alpaca.input_ids, alpaca.loss_mask) if counted])
print(repr(alpaca_loss))
assert alpaca.template == "alpaca"
assert alpaca_loss == "Negative: the battery failed quickly and support never replied." + tokenizer.eos_token
print(f"{alpaca.n_loss_tokens} of {alpaca.n_tokens} tokens count in the loss")
""")

md("""
Chat models use a chat template instead: each turn is wrapped in special tokens
(`<|im_start|>role` ... `<|im_end|>` for SmolLM2), and `--template auto` picks it for a `messages`
example. Notice the system turn that you did not write: SmolLM2's template inserts a default system
prompt whenever a conversation has none. Only the assistant turn is green.
""")

code("""
%%tokenize --model {MODEL} --out chat
{"messages": [
  {"role": "user", "content": "In one sentence, what is a token?"},
  {"role": "assistant", "content": "A token is a piece of text, often part of a word, that the model reads as one unit."}
]}
""")

code("""
chat_loss = tokenizer.decode([i for i, counted in zip(chat.input_ids, chat.loss_mask) if counted])
print(repr(chat_loss))
assert chat.template == "chat"
# the response, its end-of-turn token, and the newline the template writes after it
assert chat_loss == ("A token is a piece of text, often part of a word, that the model reads as one unit."
                     + tokenizer.eos_token + "\\n")
""")

md("""
`--train-on-prompt` turns the mask off: every token after the first becomes a target, as in
pre-training. Some recipes do this on purpose. Most instruction-tuning recipes mask the prompt,
so that the training signal is spent on the answers.
""")

code("""
%%tokenize --model {MODEL} --train-on-prompt --out chat_all
{"messages": [
  {"role": "user", "content": "In one sentence, what is a token?"},
  {"role": "assistant", "content": "A token is a piece of text, often part of a word, that the model reads as one unit."}
]}
""")

code("""
assert chat_all.input_ids == chat.input_ids                             # the same tokens...
assert chat_all.n_loss_tokens == chat_all.n_tokens - 1 > chat.n_loss_tokens  # ...but many more targets

pd.DataFrame([
    {"example": name, "tokens": r.n_tokens, "in the loss": r.n_loss_tokens,
     "share in the loss": round(r.n_loss_tokens / r.n_tokens, 2)}
    for name, r in [("alpaca", alpaca), ("chat", chat), ("chat, --train-on-prompt", chat_all)]
])
""")

md("""
With short answers, most of each sequence is template and prompt. A masked batch therefore carries
far fewer training targets than its token count suggests, which matters when you compare tokens per
second or loss curves between pre-training and fine-tuning.
""")

# ------------------------------------------------------------------ 4. data mixtures

md("""
## 4 · Pre-training data mixtures

Pre-training data is a **mixture**: each source is sampled with a fixed weight, rather than the
sources simply being concatenated. The weight sets the share of training tokens a source supplies,
so the number of **epochs**, meaning passes over that source, is

    epochs = weight × total training tokens / tokens in the source

GPT-3 was trained on 300B tokens. Its paper lists, for each source, the size in tokens, the weight,
and the resulting epochs. Before using a published table, check its arithmetic:
""")

code("""
GPT3_TOKENS = 300e9
gpt3 = pd.DataFrame({
    "source": ["Common Crawl (filtered)", "WebText2", "Books1", "Books2", "Wikipedia"],
    "tokens_B": [410, 19, 12, 55, 3],
    "weight": [0.60, 0.22, 0.08, 0.08, 0.03],
    "epochs_published": [0.44, 2.9, 1.9, 0.43, 3.4],
})
gpt3["epochs_computed"] = (gpt3.weight * GPT3_TOKENS / (gpt3.tokens_B * 1e9)).round(2)
gpt3["difference"] = (gpt3.epochs_computed - gpt3.epochs_published).round(2)
gpt3
""")

code("""
agrees = gpt3.difference.abs() <= 0.1
print("agree within 0.1 epoch:", ", ".join(gpt3.source[agrees]))
print("disagree:", ", ".join(gpt3.source[~agrees]))
print(f"the weights add up to {gpt3.weight.sum():.2f}")
assert set(gpt3.source[agrees]) == {"Common Crawl (filtered)", "Books1", "Books2"}

# which weight would each published epoch count imply?
gpt3["weight_implied"] = (gpt3.epochs_published * gpt3.tokens_B * 1e9 / GPT3_TOKENS).round(3)
gpt3[["source", "weight", "weight_implied"]]
""")

md("""
Three rows check out and two do not. The table is rounded everywhere: the weights add up to 101%,
and token counts are given in whole billions. Rounding can explain Wikipedia. A source of about
2.6B tokens, printed as "3B", gives 3.4 epochs at a weight of 3%. Rounding cannot explain WebText2.
22% of 300B is 66B tokens, about 3.5 passes over 19B tokens, and no rounding of 22% or of 19B gets
that down to 2.9. The published 2.9 would need a weight of about 18%. So the table is not fully
self-consistent, and the table alone does not tell us which column is off. The lesson carries over
to any paper: recompute the numbers before you build on them.

### LLaMA 1

The LLaMA 1 paper (1.4T training tokens) lists each source's weight, epochs, and size on disk, but
no token counts. We can infer them. The tokens seen from a source are weight × 1.4T, and the source's
own size in tokens is tokens seen / epochs. Dividing the disk size by that gives bytes per token,
which you can set against the characters per token you measured in section 1.
""")

code("""
LLAMA_TOKENS = 1.4e12
llama = pd.DataFrame({
    "source": ["CommonCrawl", "C4", "GitHub", "Wikipedia", "Books", "ArXiv", "StackExchange"],
    "weight": [0.670, 0.150, 0.045, 0.045, 0.045, 0.025, 0.020],
    "epochs": [1.10, 1.06, 0.64, 2.45, 2.23, 1.06, 1.03],
    "disk_GB": [3300, 783, 328, 83, 85, 92, 78],
})
seen = llama.weight * LLAMA_TOKENS  # tokens the model saw from each source
llama["tokens_seen_B"] = (seen / 1e9).round(1)
llama["dataset_tokens_B"] = (seen / llama.epochs / 1e9).round(1)
llama["bytes_per_token"] = (llama.disk_GB * 1e9 / (seen / llama.epochs)).round(2)

assert abs(llama.weight.sum() - 1) < 1e-9 and abs(llama.tokens_seen_B.sum() - 1400) < 0.5
assert llama.bytes_per_token.between(2.5, 4.5).all()
llama
""")

md("""
Every source comes out at about 3 to 4 bytes per token. That matches the size of the
characters-per-token figure for SmolLM2's tokenizer, although the two tokenizers differ, so only the
rough size should agree. The two web crawls pack the most text into each token, close to 4 bytes.
The smaller sources are nearer 3.

Now the epochs, side by side:
""")

code("""
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, table, column, title in [(axes[0], gpt3, "epochs_published", "GPT-3 (300B tokens)"),
                                 (axes[1], llama, "epochs", "LLaMA 1 (1.4T tokens)")]:
    ax.axhspan(1, 2, color="tab:green", alpha=0.15, label="1-2 epochs")
    ax.bar(table.source, table[column], color="tab:blue")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
axes[0].set_ylabel("epochs over the source")
axes[0].legend(loc="upper left")
fig.tight_layout()
plt.show()
""")

md("""
About 1 to 2 epochs is usually the sweet spot. Fewer leaves data unused; beyond that, each extra
pass adds less and the risk of memorizing grows. Both mixtures oversample small, high-quality sources. GPT-3
repeats WebText2 (2.9) and Wikipedia (3.4) and nearly doubles Books1 (1.9), but sees under half of
its filtered Common Crawl (0.44). LLaMA repeats Wikipedia (2.45) and Books (2.23), makes about one
pass over the web crawls, ArXiv and StackExchange, and under one over GitHub (0.64).

Budgets kept growing: Llama 2 trained on 2T tokens and Llama 3 on over 15T. Without new data, a bigger
budget means more repeats of the small sources. Phi-3 took the other road: quality over quantity.
""")

# ------------------------------------------------------------------ 5. exercises

md("""
## 5 · Exercises

Write your answer in the cell marked `# your turn` and run it, then run the check cell below it.
The checks print `pass` or `not yet:` with a hint, and they never stop the notebook.

### Exercise 1: how often would Llama 2 see Wikipedia?

Write `epochs(weight, total_tokens, dataset_tokens)`. Then suppose Llama 2 (2T tokens) had kept
LLaMA 1's mixture weights and the same Wikipedia data (use the `llama` table above). How many epochs
of Wikipedia would it train on? Store the result in `llama2_wikipedia_epochs`.
""")

code("""
# your turn
def epochs(weight, total_tokens, dataset_tokens):
    \"\"\"How many passes a run of `total_tokens` makes over a source sampled with `weight`.\"\"\"
    return None  # replace with your formula


llama2_wikipedia_epochs = None  # use epochs() and the llama table
""")

code("""
def check_exercise_1():
    try:
        got = [epochs(0.60, 300e9, 410e9), epochs(0.045, 1.4e12, 25.7e9)]
        if any(g is None for g in got):
            return ("not yet: epochs() returns None. Hint: how many tokens does the source supply over "
                    "the whole run, and how many copies of the source is that?")
        got = [float(g) for g in got]
        if abs(got[0] - 0.44) > 0.01 or abs(got[1] - 2.45) > 0.01:
            return (f"not yet: epochs(0.60, 300e9, 410e9) gave {got[0]:.3g}, but GPT-3's table says about 0.44 "
                    "for Common Crawl. Hint: check which quantity goes in the denominator")
        if llama2_wikipedia_epochs is None:
            return ("not yet: epochs() works; now set llama2_wikipedia_epochs. "
                    "Hint: llama.dataset_tokens_B is in billions of tokens")
        answer = float(llama2_wikipedia_epochs)
        if abs(answer - 3.5) > 0.05:
            return (f"not yet: llama2_wikipedia_epochs is {answer:.3g}. Hint: Llama 2's total is 2e12 tokens, "
                    "and epochs() wants tokens, not billions")
    except Exception as err:  # a check reports; it never stops the notebook
        return f"not yet: {type(err).__name__}: {err}"
    return (f"pass: {answer:.2f} epochs. The same Wikipedia, seen well past the 1-2 epoch sweet spot. "
            "Bigger budgets need more data, not just more passes")


print(check_exercise_1())
""")

md("""
### Exercise 2: exactly 10 tokens of training signal

Write an Alpaca-style example on any topic: a dict with `"instruction"`, an optional `"input"` and an
`"output"`. Its loss must cover exactly `TARGET_LOSS_TOKENS` tokens under `MODEL`'s tokenizer.
Try candidates in a `%%tokenize --model {MODEL}` cell, and remember that the end token counts too.
""")

code("""
# your turn
TARGET_LOSS_TOKENS = 10
my_example = None  # e.g. {"instruction": "...", "input": "", "output": "..."}
""")

code("""
def check_exercise_2():
    if not isinstance(my_example, dict):
        return ("not yet: set my_example to a dict with 'instruction' and 'output'. "
                "Hint: start from the review example in section 3 and shorten its output")
    try:
        result = tokenize(my_example, model=MODEL, template="alpaca")
    except Exception as err:  # a check reports; it never stops the notebook
        return f"not yet: nbllm could not tokenize it ({type(err).__name__}: {err})"
    if result.n_loss_tokens != TARGET_LOSS_TOKENS:
        return (f"not yet: the loss covers {result.n_loss_tokens} tokens, not {TARGET_LOSS_TOKENS}. "
                "Hint: only the output counts (plus the end token); %%tokenize it to see the pieces")
    return "pass"


print(check_exercise_2())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **Tokens.** A BPE tokenizer turns text into ids from a fixed vocabulary: common words take one
  token, rare words several, and a byte-level tokenizer takes one per byte. English text comes to
  roughly 3 to 5 characters per token, and dataset sizes in bytes convert to tokens at about that rate.
- **The objective.** Labels are the inputs shifted left by one, with -100 wherever nothing should be
  learned. The loss is the mean cross-entropy over the labelled positions, and perplexity is exp(loss).
  Hugging Face models shift internally, so you pass them the unshifted inputs as `labels`.
- **Loss masks.** Instruction tuning uses the same loss but counts only the response tokens (and the
  end token). Templates (Alpaca, chat) add many tokens that are never targets; `--train-on-prompt`
  counts them too.
- **Data mixtures.** Sources are sampled with weights; epochs = weight × total tokens / source tokens.
  Small, high-quality sources get repeated (2-3.4 epochs) while web crawls are seen about once or less,
  and about 1 to 2 epochs is usually the sweet spot. Recompute published tables: GPT-3's does not fully add up.

The fine-tuning labs ahead build their batches from exactly these labels and masks.
""")


if __name__ == "__main__":
    LAB.write()
