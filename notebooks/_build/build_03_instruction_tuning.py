"""Generate notebooks/03_instruction_tuning.ipynb (Lab 3: instruction fine-tuning), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "03_instruction_tuning.ipynb"

LAB = Lab("lab03", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 3 · Instruction fine-tuning

*The Alpaca template, LIMA-style small data, and generations before and after training*

A pre-trained language model continues text. It does not, by itself, treat a question as a request it
should answer and then stop. **Instruction fine-tuning** (supervised fine-tuning, SFT) closes that gap
with the same next-token loss as pre-training, applied to pairs of *instruction* and *response*. Two
recipes frame this lab:

- **Alpaca** fine-tuned LLaMA-7B on 52,002 records, each an `instruction`, an optional `input` and an
  `output`. Every record is wrapped in one fixed prompt template ("Below is an instruction that
  describes a task...") with *Instruction*, *Input* and *Response* sections. The template is part of
  what the model learns: at inference time you must prompt it the same way.
- **LIMA** fine-tuned on only 1,000 carefully chosen prompts and responses and got a strong assistant.
  Its argument: what a model knows comes from pre-training, and fine-tuning mostly teaches the
  *format and style* of a good answer. A small set of excellent examples teaches that about as well as a
  large set of mediocre ones.

By the end you will be able to

- read the Alpaca template and its loss mask, and say which tokens the model learns from;
- fine-tune SmolLM2-135M-Instruct with LoRA on Alpaca-style records and read the loss curves;
- compare generations before and after training, and separate what changed (format) from what did not (knowledge);
- explain why the loss is usually restricted to the response, and what `--train-on-prompt` changes;
- run a LIMA-style fine-tune on 40 conversations, and reproduce a run exactly from its seed.

Everything runs offline. The whole notebook takes about 3 minutes on a 2-core laptop CPU, because
the training runs are tiny: a few dozen gradient steps. That is enough to see instruction tuning
change a model's behaviour, not enough to make it good. The exercise at the end is yours.
""")

md("""
## Parameters

The cell is tagged `parameters`, so papermill (or you) can override it. The step counts are sized
for a CPU. On a GPU, raise `STEPS` to a few hundred (about 10 epochs of the shipped set at batch 8),
`LIMA_STEPS` to 50 or more and `EVAL_EVERY` to match. The checks below hold for longer runs too.
""")

code("""
MODEL = "smollm2"     # SmolLM2-135M-Instruct, packaged for offline use
SEED = 0              # fixes the train/validation split, data order, LoRA init and dropout
STEPS = 12            # LoRA steps on the Alpaca-style set (about 2-3 s each on a 2-core CPU)
LIMA_STEPS = 4        # LoRA steps on the LIMA-style set (longer examples: about 5 s each)
BATCH_SIZE = 8        # examples per optimizer step
EVAL_EVERY = 4        # validation loss every N steps
LR = 1e-3             # peak learning rate; nbllm's LoRA default is 2e-4, short runs need more
SAMPLES = 2           # validation prompts generated before and after each run
MAX_NEW_TOKENS = 40   # length of the generations we ask for ourselves
""", tags=["parameters"])

LAB.setup()

code("""
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import torch

import nbllm
from nbllm.data import load_records
from nbllm.generation import generate
from nbllm.tokenization import alpaca_prompt

pd.set_option("display.max_colwidth", 160)
# transformers 5 warns about a deprecated name that peft still calls on every run: noise, not news
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
""")

# ------------------------------------------------------------------ 1. the alpaca template

md("""
## 1 · The Alpaca template

The template has two variants: one for records with an `input` (a text to work on) and one without.
`nbllm.tokenization.alpaca_prompt` renders the prompt part, everything up to where the response begins:
""")

code("""
print(alpaca_prompt("Summarize this in one sentence.", "The city council met on Tuesday to discuss bike lanes."))
print("-" * 60)
print(alpaca_prompt("What is the chemical symbol for gold?"))
""")

md("""
Training appends the `output` and the end-of-sequence token to that prompt. `%%tokenize` shows one
record from nbllm's shipped set the way training sees it. Grey chips are prompt; green chips are in the
loss. Hover a chip for its position and id, or open *ids and labels* for the table.
""")

code("""
%%tokenize --model {MODEL} --out record_view
{"instruction": "Summarize this in one sentence.",
 "input": "The city council met on Tuesday to discuss the new bike lanes. After two hours of debate, members voted seven to two to build lanes on three main streets by next summer.",
 "output": "The city council voted 7-2 to build bike lanes on three main streets by next summer."}
""")

code("""
tokenizer = nbllm.load_tokenizer(MODEL)
in_loss = tokenizer.decode([i for i, counted in zip(record_view.input_ids, record_view.loss_mask) if counted])
print("the loss covers:", repr(in_loss))

assert record_view.template == "alpaca"
assert in_loss == "The city council voted 7-2 to build bike lanes on three main streets by next summer." + tokenizer.eos_token
print(f"{record_view.n_loss_tokens} of {record_view.n_tokens} tokens are targets "
      f"({record_view.n_loss_tokens / record_view.n_tokens:.0%})")
""")

md("""
The whole prompt, including the boilerplate sentence and the `###` headers, is context only: its
labels are -100. The loss covers the response and one more token, `<|im_end|>` (SmolLM2's end token).
That last target matters: it is how the model learns to **stop** after answering.

### The shipped data

Alpaca's 52K records are too many for a CPU lab (and licensed for non-commercial use only), so nbllm ships
320 Alpaca-style records of its own, in the same three fields. `load_records` reads them as a list of
dicts; pandas makes them easy to browse.
""")

code("""
records = load_records("instructions")
data = pd.DataFrame(records)
data["output_words"] = data.output.str.split().str.len()

assert len(data) == 320 and list(data.columns[:3]) == ["instruction", "input", "output"]
print(f"{len(data)} records, {(data.input != '').mean():.0%} with an input; "
      f"outputs have {data.output_words.median():.0f} words at the median, {data.output_words.max()} at most")
data.sample(6, random_state=1)[["instruction", "input", "output"]]
""")

md("""
The outputs are short and plain: one or two sentences, no markdown, no preamble. Those are the habits
a fine-tune on this set will pick up, whatever else it learns.
""")

# ------------------------------------------------------------------ 2. before training

md("""
## 2 · Before training: the base model meets the Alpaca template

SmolLM2-135M-Instruct is already instruction-tuned, but with a **chat template**
(`<|im_start|>user ... <|im_end|>`), not with Alpaca's. What happens if we prompt it in the Alpaca format?
`nbllm.generation.generate` renders a prompt in a template and decodes greedily (temperature 0), so
the output is deterministic. For contrast we also ask the same question in the model's own chat
template.
""")

code("""
base_model, tokenizer = nbllm.load_model(MODEL)

PROBES = [
    {"instruction": "What is 12 times 15?"},
    {"instruction": "Rewrite this sentence in the passive voice.", "input": "The committee approved the budget."},
    {"instruction": "Name three planets of the solar system."},
]


def as_text(probe):
    return probe["instruction"] + (f"\\n{probe['input']}" if probe.get("input") else "")


before = pd.DataFrame({
    "prompt": [as_text(p) for p in PROBES],
    "alpaca template": [generate(base_model, tokenizer, p, template="alpaca", max_new_tokens=MAX_NEW_TOKENS)
                        for p in PROBES],
    "chat template": [generate(base_model, tokenizer, as_text(p), template="chat", max_new_tokens=MAX_NEW_TOKENS)
                      for p in PROBES],
})
assert before.notna().all().all() and (before["alpaca template"].str.len() > 0).all()
before.style.format(escape="html").set_properties(**{"white-space": "pre-wrap", "text-align": "left"})
""")

md("""
In its own chat template the model answers and stops (right or wrong: it is a 135M-parameter model).
In the Alpaca template it often answers and then **keeps going**: it opens a new `### Explanation:` or
`### Response:` section, or repeats itself, until it runs out of tokens. It has never been trained to
emit the end token after an Alpaca response. Counting the answers that leak a `###` header:
""")

code("""
def leaks(text):
    \"\"\"True when a generation runs past its answer into a new template section.\"\"\"
    return "###" in text


before["leaks"] = before["alpaca template"].map(leaks)
print(f"alpaca template: {before.leaks.sum()} of {len(before)} answers run on into a new ### section")
print(f"chat template:   {before['chat template'].map(leaks).sum()} of {len(before)}")
""")

# ------------------------------------------------------------------ 3. training

md("""
## 3 · Fine-tuning on Alpaca-style records

`%sft` trains. With `--method lora` the pre-trained weights stay frozen and small low-rank adapters on
the attention projections learn instead (nbllm's default: rank 8 on `q_proj` and `v_proj`). It holds
out 10% of the records (`--val-fraction`, default 0.1) to measure validation loss every `EVAL_EVERY`
steps, and `--samples` generates answers to a few validation prompts before and after training.
In JupyterLab you get a live loss curve and a **Stop** button; `--out` binds the result to a variable.
""")

code("""
%sft --model {MODEL} --data instructions --format alpaca --method lora --max-steps {STEPS} --batch-size {BATCH_SIZE} --lr {LR} --eval-every {EVAL_EVERY} --samples {SAMPLES} --seed {SEED} --out alpaca_run
""")

md("""
The result's `.history` has one row per optimizer step. `val_loss` is filled only on evaluation steps,
`tokens` counts real (unpadded) tokens processed so far, and `lr` shows the schedule: a short linear
warm-up, then linear decay to zero at the last step.
""")

code("""
history = alpaca_run.history
history.round(4)
""")

code("""
evaluated = history.dropna(subset=["val_loss"])

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(history.step, history.loss, marker=".", label="training loss (one batch)")
ax.plot(evaluated.step, evaluated.val_loss, marker="o", label="validation loss (held-out set)")
ax.set_xlabel("optimizer step")
ax.set_ylabel("cross-entropy per response token")
ax.set_title(f"LoRA on {alpaca_run.stats['n_train']} Alpaca-style records")
ax.legend()
fig.tight_layout()
plt.show()
""")

md("""
The training loss jumps around because every step sees a different batch of 8 records, and some
records are simply harder to predict than others (a one-word label against a paragraph of advice).
The validation loss is computed on the same held-out records every time, so it is the curve to trust
in a short run. The checks below therefore compare the first and last validation loss. The training
loss gets only a smoothed look, as the mean of the first and last three steps.

The parameter count is the other number to check. LoRA adds, for each adapted `d_in → d_out` matrix,
a pair `B·A` with `r·(d_in + d_out)` parameters, and we can predict the total exactly from the model's shape.
""")

code("""
stats = alpaca_run.stats
val = evaluated.val_loss
first3, last3 = history.loss.head(3).mean(), history.loss.tail(3).mean()
print(f"validation loss: {val.iloc[0]:.3f} at step {evaluated.step.iloc[0]} -> "
      f"{val.iloc[-1]:.3f} at step {evaluated.step.iloc[-1]}")
print(f"training loss, mean of the first and last 3 steps: {first3:.3f} -> {last3:.3f}")
assert len(history) == STEPS and len(val) >= 2
assert val.iloc[-1] < val.iloc[0], "validation loss should go down"

cfg = alpaca_run.model.config
head_dim = cfg.hidden_size // cfg.num_attention_heads
q_proj = (cfg.hidden_size, cfg.num_attention_heads * head_dim)   # d_in, d_out
v_proj = (cfg.hidden_size, cfg.num_key_value_heads * head_dim)   # grouped-query attention: fewer value heads
r = alpaca_run.config.lora_r
predicted = cfg.num_hidden_layers * r * (sum(q_proj) + sum(v_proj))
share = stats["trainable"] / stats["total_params"]
print(f"trainable: {stats['trainable']:,} of {stats['total_params']:,} parameters ({share:.2%}); "
      f"predicted {cfg.num_hidden_layers} layers x {r} x ({sum(q_proj)} + {sum(v_proj)}) = {predicted:,}")
assert stats["trainable"] == predicted
assert share < 0.01
print(f"{stats['tokens']:,} real tokens in {stats['steps']} steps, {stats['tokens_per_s']:.0f} tokens/s "
      f"on {stats['device']}")
""")

md("""
About a third of one percent of the weights trained. Because the frozen model is shared, the
adapter is the only thing a new task has to store.
""")

# ------------------------------------------------------------------ 4. before / after

md("""
## 4 · Before and after

`.samples` holds the validation prompts `%sft` generated for, before and after training. These
prompts were held out, so the model never trained on them.
""")

code("""
samples = alpaca_run.samples
assert len(samples) == min(SAMPLES, stats["n_val"]) and list(samples.columns) == ["prompt", "before", "after"]
samples.style.format(escape="html").set_properties(**{"white-space": "pre-wrap", "text-align": "left"})
""")

md("""
Now our probes from section 2. `.generate` prompts the tuned model in the template it was trained
with, here Alpaca, and decodes greedily by default.
""")

code("""
after = before[["prompt", "alpaca template"]].rename(columns={"alpaca template": "before"})
after["after"] = [alpaca_run.generate(p, max_new_tokens=MAX_NEW_TOKENS) for p in PROBES]
print(f"answers that run on into a new ### section: {after.before.map(leaks).sum()} of {len(after)} before, "
      f"{after.after.map(leaks).sum()} of {len(after)} after")
after.style.format(escape="html").set_properties(**{"white-space": "pre-wrap", "text-align": "left"})
""")

md("""
Read the two columns side by side. With the default parameters, after a dozen steps:

- **Format changed.** The tuned model usually stops after its answer instead of inventing the next
  `###` section, because every training example ended with the end token. Answers also get shorter
  and plainer, like the training outputs.
- **Knowledge did not.** A wrong answer tends to stay wrong: the passive-voice probe still comes back
  in the active voice. A few hundred short records cannot add much of what pre-training did not put there.
  Sometimes a held-out answer even gets *worse*. Fine-tuning on arithmetic-flavoured records
  teaches the model to write something that looks like a calculation, not to calculate.

Try an instruction of your own. `temperature` above 0 samples instead of decoding greedily
(seeded, so it is reproducible too).
""")

code("""
new_instruction = "Explain what overfitting is in one sentence."
print("greedy:         ", alpaca_run.generate(new_instruction, max_new_tokens=MAX_NEW_TOKENS))
print("temperature 0.8:", alpaca_run.generate(new_instruction, max_new_tokens=MAX_NEW_TOKENS, temperature=0.8))
""")

# ------------------------------------------------------------------ 5. train on prompt

md("""
## 5 · Loss on the response only, or on everything?

nbllm, like most SFT recipes, puts only the response in the loss. `--train-on-prompt` makes every
token after the first a target, as in pre-training. Same record as in section 1:
""")

code("""
%%tokenize --model {MODEL} --train-on-prompt --out record_all
{"instruction": "Summarize this in one sentence.",
 "input": "The city council met on Tuesday to discuss the new bike lanes. After two hours of debate, members voted seven to two to build lanes on three main streets by next summer.",
 "output": "The city council voted 7-2 to build bike lanes on three main streets by next summer."}
""")

md("""
The same tokens, far more targets. Across the whole shipped set:
""")

code("""
from nbllm.api import tokenize

masked = [tokenize(r, tokenizer=tokenizer, template="alpaca") for r in records]
unmasked = [tokenize(r, tokenizer=tokenizer, template="alpaca", train_on_prompt=True) for r in records]

n_tokens = sum(t.n_tokens for t in masked)
targets = pd.DataFrame([
    {"loss on": "response only (default)", "targets": sum(t.n_loss_tokens for t in masked)},
    {"loss on": "everything (--train-on-prompt)", "targets": sum(t.n_loss_tokens for t in unmasked)},
])
targets["share of all tokens"] = (targets.targets / n_tokens).round(2)

assert record_all.input_ids == record_view.input_ids and record_all.n_loss_tokens > record_view.n_loss_tokens
assert all(u.input_ids == m.input_ids for u, m in zip(unmasked, masked))
assert targets.targets[0] < 0.5 * targets.targets[1]
print(f"{len(records)} records, {n_tokens:,} tokens in all")
targets
""")

md("""
About a third of the tokens are response. With `--train-on-prompt`, two of every three targets
would be the template and the user's text. Which of those tokens are hard to predict? The base model's
loss on one batch of records, split by position type, answers that with a single forward pass:
""")

code("""
import torch.nn.functional as F

prompt_nll, response_nll = [], []
with torch.no_grad():
    for t_all, t_resp in zip(unmasked[:16], masked[:16]):
        ids = torch.tensor([t_all.input_ids], device=base_model.device)
        logits = base_model(ids).logits[0, :-1].float()
        nll = F.cross_entropy(logits, ids[0, 1:], reduction="none").cpu()   # the loss of each next token
        is_response = torch.tensor(t_resp.loss_mask[1:])
        response_nll.append(nll[is_response])
        prompt_nll.append(nll[~is_response])

split_loss = pd.DataFrame({
    "tokens": ["prompt (template + instruction + input)", "response (+ end token)"],
    "count": [int(sum(len(x) for x in prompt_nll)), int(sum(len(x) for x in response_nll))],
    "mean loss (base model)": [torch.cat(prompt_nll).mean().item(), torch.cat(response_nll).mean().item()],
}).round(2)
assert split_loss["mean loss (base model)"][0] > split_loss["mean loss (base model)"][1]
split_loss
""")

md("""
The prompt tokens are the *harder* ones: the model cannot know what a user will ask. Train on them,
and most of the gradient goes into modelling questions and memorising a fixed template, not into
answering. The boilerplate becomes nearly free to predict after a few steps, so the loss curve drops
quickly without the answers getting any better. Two consequences:

- Loss values from runs with and without `--train-on-prompt` are not comparable; they average over
  different tokens.
- Training on the prompt can still help when prompts are long and in-domain (the model also learns
  the domain's language), but for teaching a response format, masking is the usual choice.
""")

# ------------------------------------------------------------------ 6. LIMA

md("""
## 6 · LIMA-style: few, carefully written examples

LIMA's data were conversations written or selected by hand for a consistent, helpful voice. nbllm
ships 40 such conversations (`lima`), written for the course, each 2 or 4 turns. They use the
model's chat template, and `--format lima` checks that turns alternate user/assistant. With a
multi-turn conversation, every assistant turn is a target.
""")

code("""
lima = load_records("lima")
turns = pd.Series([len(r["messages"]) for r in lima])
assert len(lima) == 40 and set(turns) <= {2, 4}
print(f"{len(lima)} conversations: {(turns == 2).sum()} with 2 turns, {(turns == 4).sum()} with 4")
for message in lima[1]["messages"]:
    print(f"\\n[{message['role']}] {message['content']}")
""")

md("""
These answers are longer than the Alpaca-style outputs, so each step costs more. A handful of steps
is all a CPU lab can afford: with 36 training conversations and batch 8, `LIMA_STEPS = 4` is less
than one epoch. LIMA itself trained a 65B model for 15 epochs on its 1,000 examples.
""")

code("""
%sft --model {MODEL} --data lima --format lima --method lora --max-steps {LIMA_STEPS} --batch-size {BATCH_SIZE} --lr {LR} --eval-every 2 --samples {SAMPLES} --seed {SEED} --out lima_run
""")

code("""
lima_val = lima_run.history.val_loss.dropna()
print(f"validation loss {lima_val.iloc[0]:.3f} -> {lima_val.iloc[-1]:.3f} "
      f"on {lima_run.stats['n_val']} held-out conversations")
assert lima_run.stats["n_train"] + lima_run.stats["n_val"] == len(lima)
assert lima_val.iloc[-1] < lima_val.iloc[0]
lima_run.samples.style.format(escape="html").set_properties(**{"white-space": "pre-wrap", "text-align": "left"})
""")

md("""
Several things differ from the Alpaca run:

- The validation loss is higher than on the Alpaca set. The answers are longer and open-ended, so there
  are many good continuations, and the loss punishes all but the one that was written.
- The base model already speaks this chat template and answers at length, so there is no format to
  repair. A few steps nudge the style, and a handful of conversations cannot teach much more. The
  LIMA result needs a strong pre-trained model, many epochs and examples written with great care.
  On a 135M model, a short run mostly shows *how little* 40 examples change.
- Small data overfits fast. Raise `LIMA_STEPS` to 8 or more at this learning rate, and greedy answers
  can collapse into repeating one phrase. With few examples, the learning rate and the number of
  epochs are the knobs to watch.

Quality over quantity is about what the examples *demonstrate*. Every LIMA answer shows the same
habits: answer first, then a short explanation, in a friendly register. A thousand such examples are
consistent signal. Fifty thousand noisy ones teach the noise as well.
""")

# ------------------------------------------------------------------ 7. reproducibility

md("""
## 7 · Reproducibility

A run is a function of its seed: the seed fixes the train/validation split, the order in which
examples are drawn (step *k*'s batch depends only on the seed and *k*), the LoRA initialisation and
dropout. The script API `nbllm.api.sft` is what `%sft` calls; here it runs three 2-step trainings
without validation or samples, two of them with the same seed.
""")

code("""
from nbllm.api import sft


def short_run(seed):
    run = sft("instructions", model=MODEL, method="lora", max_steps=2, batch_size=4, lr=LR,
              samples=0, val_fraction=0, seed=seed, progress="none")
    return run.history.loss.tolist(), run.stats["device"]


(first, device), (again, _), (other, _) = short_run(SEED), short_run(SEED), short_run(SEED + 1)
print(f"seed {SEED}:     {[round(x, 6) for x in first]}")
print(f"seed {SEED} again: {[round(x, 6) for x in again]}")
print(f"seed {SEED + 1}:     {[round(x, 6) for x in other]}")

tolerance = 0.0 if device == "cpu" else 1e-3  # some GPU kernels add in a varying order
assert max(abs(a - b) for a, b in zip(first, again)) <= tolerance, "the same seed should give the same losses"
assert first != other, "a different seed draws different batches"
""")

md("""
On a CPU the losses agree to the last bit. On a GPU, some kernels sum in a nondeterministic order,
so expect agreement to a few decimals. That is why the check allows a tolerance there.
""")

# ------------------------------------------------------------------ 8. exercise

md("""
## 8 · Exercise: teach a format

Fine-tuning teaches format cheaply. Prove it: make the model begin **every** answer with
`Answer:`, whatever the question.

1. In `my_records`, write at least 8 Alpaca-style records (`instruction`, optional `input`, `output`),
   each with an output that starts with `Answer:`. Vary the topics; keep outputs short.
2. Run the training cell. It fine-tunes a fresh SmolLM2 with LoRA on your records, in about
   20 seconds.
3. Run the check. It asks four questions that are not in your data and passes when at least three
   answers start with `Answer:`.

If the check says *not yet*, read its hint: the data, the number of steps and the learning rate are
all yours to change. Notice what the check does not test: whether the answers are *right*.
""")

code("""
# your turn
FORMAT_PREFIX = "Answer:"
my_records = []  # e.g. {"instruction": "...", "output": "Answer: ..."}, at least 8 of them
STYLE_STEPS = 10
STYLE_LR = 1e-3
""")

code("""
# trains only when my_records holds enough records; otherwise it just says so
style_run = None
if isinstance(my_records, list) and len(my_records) >= 8:
    style_run = %sft --model {MODEL} --data my_records --format alpaca --method lora --max-steps {STYLE_STEPS} --lr {STYLE_LR} --batch-size 8 --val-fraction 0 --samples 0 --seed {SEED}
    display(style_run)
else:
    print(f"my_records holds {len(my_records) if isinstance(my_records, list) else 'no list of'} records; "
          "write at least 8, then run this cell")
""")

code("""
CHECK_QUESTIONS = [
    "What is the capital of Japan?",
    "How many legs does a spider have?",
    "Explain what an epoch is in training.",
    "Suggest a name for a pet goldfish.",
]


def check_exercise():
    try:
        if not isinstance(my_records, list) or len(my_records) < 8:
            return ("not yet: my_records needs at least 8 records. Hint: each is a dict like "
                    "{'instruction': 'Name a primary colour.', 'output': 'Answer: Red.'}")
        outputs = [str(r.get("output", "")) if isinstance(r, dict) else "" for r in my_records]
        if not all(o.startswith(FORMAT_PREFIX) for o in outputs):
            return f"not yet: every output should start with {FORMAT_PREFIX!r}; the model copies what it sees"
        seen = {str(r.get("instruction", "")).strip().lower() for r in my_records}
        if any(q.lower() in seen for q in CHECK_QUESTIONS):
            return "not yet: leave the check's questions out of your records; it tests held-out questions"
        if style_run is None or style_run.stats["n_train"] != len(my_records):
            return "not yet: run the training cell above with your current records"
        answers = [style_run.generate({"instruction": q}, max_new_tokens=12) for q in CHECK_QUESTIONS]
        for q, a in zip(CHECK_QUESTIONS, answers):
            print(f"  {q!r} -> {a!r}")
        hits = sum(a.startswith(FORMAT_PREFIX) for a in answers)
        if hits < 3:
            final_loss = style_run.stats["final_loss"]
            return (f"not yet: {hits} of {len(answers)} answers start with {FORMAT_PREFIX!r}. Hint: the final "
                    f"training loss was {final_loss:.2f}; with 8 short records, LoRA needs a larger learning "
                    "rate or more steps (try STYLE_LR = 3e-3)")
    except Exception as err:  # a check reports; it never stops the notebook
        return f"not yet: {type(err).__name__}: {err}"
    return (f"pass: {hits} of {len(answers)} held-out answers follow the format. Now read them: "
            "is the format all that was learned?")


print(check_exercise())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **Instruction tuning is next-token prediction on answers.** Records are rendered through a fixed
  template (Alpaca: *Instruction*, optional *Input*, *Response*), and only the response plus the end
  token enter the loss. The end token is what teaches a model to stop.
- **Templates are part of the model.** SmolLM2 was tuned with a chat template; prompted in Alpaca's, it
  ran on into invented `###` sections. A dozen LoRA steps on 288 records mostly fixed that.
- **Fine-tuning changes format more than knowledge.** Answers became shorter and stopped cleanly; wrong
  answers stayed wrong. That is LIMA's point seen from the other side: knowledge comes from pre-training,
  and a small, consistent dataset can teach the format.
- **LoRA is cheap.** 460,800 trainable parameters (0.34% of the model), predicted exactly as
  layers × r × (d_in + d_out) summed over the adapted matrices.
- **Read the right curve.** In short runs the per-batch training loss is noisy; the validation loss on
  a fixed held-out set is the signal. Masked and unmasked (`--train-on-prompt`) losses average over
  different tokens, so they cannot be compared.
- **Runs are reproducible.** The seed fixes the split, the batches, the adapter initialisation and
  dropout; on a CPU, the same seed gives bit-identical losses.

Next: LoRA itself (ranks, targets, merging adapters) and preference tuning.
""")


if __name__ == "__main__":
    LAB.write()
