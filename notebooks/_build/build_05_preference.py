"""Generate notebooks/05_preference.ipynb (Lab 5: preference tuning with DPO), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "05_preference.ipynb"

LAB = Lab("lab05", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 5 · Preference tuning with DPO

*Two answers to one question: teach the model which one people prefer*

Instruction tuning shows a model *one* good answer per prompt and raises its likelihood. Often we can
say more easily which of **two** answers is better than write the perfect one. The lecture's example:
the same question answered once in technical jargon and once in plain, friendly words. Both are correct;
a general audience prefers the second. **Preference fine-tuning** uses such pairs: a prompt $x$, a
*chosen* answer $y_w$ and a *rejected* answer $y_l$.

RLHF does this in two stages: fit a reward model to the preferences, then optimise the language model
against it with reinforcement learning (PPO). **Direct preference optimisation (DPO)** skips both the
separate reward model and the RL loop and trains on the pairs with a simple classification-style loss.
The model being trained (the *policy* $\\pi_\\theta$) is compared with a frozen *reference* $\\pi_\\text{ref}$,
usually the model before preference tuning. The **implicit reward** of an answer is how much more
likely the policy makes it than the reference does:

$$r(x, y) = \\beta \\left[\\log \\pi_\\theta(y \\mid x) - \\log \\pi_\\text{ref}(y \\mid x)\\right]$$

and the loss pushes the chosen answer's reward above the rejected one's:

$$\\mathcal{L} = -\\log \\sigma\\big(r(x, y_w) - r(x, y_l)\\big).$$

- $\\log \\pi(y \\mid x)$ is the summed log-probability of the answer's tokens given the prompt, the
  same quantity the SFT loss uses.
- The difference $r(x, y_w) - r(x, y_l)$ is the **reward margin**. The loss is small when the margin is
  large and positive, and it is $\\log 2 \\approx 0.693$ when the margin is zero.
- $\\beta$ sets how strongly the policy is held near the reference. The gradient of the loss fades once
  $\\beta$ times the log-ratio gap is large, so a small $\\beta$ lets the policy drift further before the
  loss is satisfied.

With **LoRA** the reference costs no memory: it is the same network with the adapters switched off.
Only the adapters train, so "adapters off" *is* the model before preference tuning, exactly.

By the end you will be able to

- explain each term of the DPO loss and what $\\beta$ does;
- run `%sft --format preference --method dpo` and read the loss, reward margin and preference accuracy;
- compute an answer's implicit reward by hand from log-probabilities, and match what the trainer reports;
- check that the reference stayed untouched, and compare generations before and after.

Everything runs offline on SmolLM2-135M-Instruct. DPO needs four forward passes per pair (policy and
reference, chosen and rejected), so the run here is a handful of steps: the notebook takes about
5 minutes on a 2-core CPU. The exercises at the end are yours.
""")

md("""
## Parameters

The cell is tagged `parameters`, so papermill (or you) can override it. The step count is sized for a
CPU. On a GPU, raise `STEPS` to 100 or more (several epochs of the shipped set), lower `LR` towards
nbllm's DPO default of 5e-5 and set `EVAL_EVERY` to about a tenth of `STEPS`. The checks below hold for
longer runs too.
""")

code("""
MODEL = "smollm2"     # SmolLM2-135M-Instruct, packaged for offline use
SEED = 0              # fixes the train/validation split, batch order and LoRA initialisation
STEPS = 8             # DPO steps (each one: 4 forward passes over 8 pairs)
BATCH_SIZE = 8        # preference pairs per step
LR = 1e-3             # high for DPO; fine for a few LoRA steps on an easy preference
BETA = 0.1            # DPO's beta
EVAL_EVERY = 4        # validation loss, margin and accuracy every N steps
MAX_NEW_TOKENS = 40   # length of the generations we compare
PROMPT = "How does a refrigerator keep food cold?"
""", tags=["parameters"])

LAB.setup()

code("""
import math
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

import nbllm
from nbllm.data import load_records
from nbllm.generation import generate

pd.set_option("display.max_colwidth", 200)
# transformers 5 warns about a deprecated name that peft still calls on every run: noise, not news
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
""")

# ------------------------------------------------------------------ 1. data

md("""
## 1 · The data: one question, two answers

nbllm ships `preferences`: 120 everyday questions, each with a friendly answer (`chosen`) and a
correct but jargon-heavy one (`rejected`), the lecture's example.
""")

code("""
records = load_records("preferences")
pairs = pd.DataFrame(records)
assert len(pairs) == 120 and list(pairs.columns) == ["prompt", "chosen", "rejected"]
words = pd.DataFrame({"chosen": pairs.chosen.str.split().str.len(), "rejected": pairs.rejected.str.split().str.len()})
print(f"{len(pairs)} pairs; words per answer at the median: chosen {words.chosen.median():.0f}, "
      f"rejected {words.rejected.median():.0f}")
pairs.head(3)
""")

md("""
The two answers have about the same length, so the model cannot learn "prefer the shorter one". What
separates them is register: everyday words and analogies against technical terms.

## 2 · Before training: which answer does the model already prefer?

The log-probability of an answer, $\\log \\pi(y \\mid x)$, is the sum over its tokens of the log-probability
the model gives each token after the prompt and the answer so far. nbllm encodes each pair the way
training sees it: the prompt and answer through SmolLM2's chat template, with **labels** that are the
inputs shifted by one and -100 wherever a position is not an answer token. The next cell sums the
log-probabilities at the answer positions with one plain forward pass per sequence.
""")

code("""
from nbllm.config import SFTConfig
from nbllm.train.dpo import prepare_preferences


def answer_logp(model, example):
    \"\"\"log pi(answer | prompt): summed log-probabilities of the answer tokens, one forward pass.\"\"\"
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([example.input_ids], device=device)).logits[0]
    logp = logits.float().log_softmax(-1)
    positions = [i for i, label in enumerate(example.labels) if label != -100]
    targets = torch.tensor([example.labels[i] for i in positions], device=device)
    return logp[positions, targets].sum().item()


base_model, tokenizer = nbllm.load_model(MODEL)
base_model.eval()
probe = SFTConfig(format="preference", method="dpo")  # the defaults: chat template, max length 512
(chosen_ex, rejected_ex), = prepare_preferences(records[:1], tokenizer, probe).train
n_answer = sum(label != -100 for label in chosen_ex.labels)
print(f"prompt: {records[0]['prompt']!r}")
print(f"chosen answer: {n_answer} tokens in the loss, of {len(chosen_ex)} in the sequence")
print(f"log p(chosen)   = {answer_logp(base_model, chosen_ex):.2f}")
print(f"log p(rejected) = {answer_logp(base_model, rejected_ex):.2f}")
""")

md("""
A log-probability summed over dozens of tokens is a large negative number, and it depends on the
answer's length and on how common its words are. So raw likelihoods do not tell us which answer the model
"prefers" in any useful sense. DPO never compares them directly. It compares each answer's
log-probability under the policy with the same answer's log-probability under the reference, and that
ratio cancels most of what length and vocabulary do to the raw numbers.

## 3 · DPO with LoRA

`%sft --format preference --method dpo` attaches LoRA adapters (rank 8 on `q_proj` and `v_proj`) and
trains them with the DPO loss. The reference is the same model with the adapters switched off. 10% of
the pairs are held out for validation. Besides the loss, `.history` records per step the mean **reward
margin** and **preference accuracy** (the share of pairs with a positive margin) on the step's batch,
and on the validation pairs every `EVAL_EVERY` steps. The step count is tiny; watch the trend.
""")

code("""
%sft --model {MODEL} --data preferences --format preference --method dpo --beta {BETA} --max-steps {STEPS} --batch-size {BATCH_SIZE} --lr {LR} --eval-every {EVAL_EVERY} --samples 1 --seed {SEED} --out friendly
""")

code("""
history = friendly.history
if "val_pref_acc" not in history:  # columns only evaluation rows carry: read them from the raw rows
    history = pd.DataFrame(friendly._history)
shown = ["step", "loss", "reward_margin", "reward_chosen", "pref_acc", "val_loss", "val_reward_margin", "val_pref_acc"]
history[shown].round(3)
""")

code("""
evaluated = history.dropna(subset=["val_loss"])
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
for ax, (train_col, val_col, title) in zip(axes, [("loss", "val_loss", "DPO loss"),
                                                  ("reward_margin", "val_reward_margin", "reward margin"),
                                                  ("pref_acc", "val_pref_acc", "preference accuracy")]):
    ax.plot(history.step, history[train_col], ".-", label="training batch")
    ax.plot(evaluated.step, evaluated[val_col], "o-", label="validation pairs")
    ax.set_title(title)
    ax.set_xlabel("step")
axes[0].axhline(math.log(2), color="grey", linestyle="--", label="log 2")
axes[0].legend()
fig.tight_layout()
plt.show()
""")

md("""
How to read it:

- At **step 1** the adapters are fresh ($B = 0$), so the policy *is* the reference. Every reward is
  exactly 0, the margin is 0 and the loss is exactly $\\log 2$. The preference accuracy reads 0 because
  a margin of 0 is not positive.
- The **margin** grows as the policy raises the chosen answers relative to the rejected ones (relative
  to the reference). The loss falls as the margin grows, because $-\\log\\sigma(m)$ falls as $m$ grows.
- **reward_chosen** is the chosen answers' reward alone. DPO only constrains the *difference*.
  Both rewards can fall while the margin grows: the model then makes the rejected answer much less
  likely and the chosen one only a little less. That is a known DPO effect, and one reason to keep an
  eye on what else the model forgets.
""")

code("""
first, last = history.iloc[0], history.iloc[-1]
print(f"loss {first.loss:.3f} -> {last.loss:.3f};  train margin {first.reward_margin:.3f} -> "
      f"{history.reward_margin.tail(2).mean():.3f} (mean of the last 2 steps)")
print(f"validation: margin {evaluated.val_reward_margin.iloc[-1]:.3f}, "
      f"preference accuracy {evaluated.val_pref_acc.iloc[-1]:.2f} on {friendly.stats['n_val']} held-out pairs")
assert abs(first.loss - math.log(2)) < 1e-4 and first.reward_margin == 0  # policy == reference at step 1
assert history.reward_margin.tail(2).mean() > history.reward_margin.head(2).mean(), "the margin should grow"
assert history.pref_acc.tail(2).mean() > history.pref_acc.iloc[0], "preference accuracy should rise"
assert evaluated.val_reward_margin.iloc[-1] > 0 and evaluated.val_pref_acc.iloc[-1] > 0.5
""")

# ------------------------------------------------------------------ 4. by hand

md("""
## 4 · The implicit reward, by hand

Now check the trainer's numbers with nothing but forward passes. `prepare_preferences` splits and
encodes the records exactly as the run did (same seed), so `held_out.val` holds the validation pairs.
For each answer we compute $\\log\\pi_\\theta$ with the adapters on and $\\log\\pi_\\text{ref}$ inside peft's
`disable_adapter()` context, then the rewards, the margin and the loss.
""")

code("""
policy = friendly.model.eval()  # eval(): LoRA dropout off, as during validation
held_out = prepare_preferences(records, friendly.tokenizer, friendly.config)
assert len(held_out.val) == friendly.stats["n_val"]


def rewards(pair):
    \"\"\"(reward chosen, reward rejected, their log-probabilities) for one (chosen, rejected) pair.\"\"\"
    logp = {"policy": [answer_logp(policy, ex) for ex in pair]}
    with policy.disable_adapter():  # the reference: the same weights without the adapters
        logp["reference"] = [answer_logp(policy, ex) for ex in pair]
    r_chosen, r_rejected = (BETA * (p - r) for p, r in zip(logp["policy"], logp["reference"]))
    return r_chosen, r_rejected, logp


r_chosen, r_rejected, logp = rewards(held_out.val[0])
margin = r_chosen - r_rejected
loss = -F.logsigmoid(torch.tensor(margin)).item()
print(f"prompt: {held_out.val_examples[0]['messages'][0]['content']!r}")
print(pd.DataFrame(logp, index=["chosen", "rejected"]).round(2).to_string())
print(f"reward chosen   = {BETA} x ({logp['policy'][0]:.2f} - ({logp['reference'][0]:.2f})) = {r_chosen:.3f}")
print(f"reward rejected = {BETA} x ({logp['policy'][1]:.2f} - ({logp['reference'][1]:.2f})) = {r_rejected:.3f}")
print(f"margin = {margin:.3f}, loss = -log sigmoid(margin) = {loss:.3f}")
""")

md("""
One pair is an example; the trainer reports the **mean** margin over all validation pairs at its last
evaluation, which ran after the last optimizer step, on the same weights we have now. Recompute it over
every validation pair and compare:
""")

code("""
by_hand = [rewards(pair)[:2] for pair in held_out.val]
margins = [c - r for c, r in by_hand]
hand_margin = sum(margins) / len(margins)
hand_acc = sum(m > 0 for m in margins) / len(margins)
hand_loss = sum(-F.logsigmoid(torch.tensor(m)).item() for m in margins) / len(margins)
reported = evaluated.iloc[-1]
assert reported.step == STEPS
tolerance = 1e-3 if friendly.stats["device"] == "cpu" else 5e-2  # GPUs train in bf16
print(f"                 by hand   trainer")
print(f"mean margin      {hand_margin:7.3f}   {reported.val_reward_margin:7.3f}")
print(f"pref. accuracy   {hand_acc:7.3f}   {reported.val_pref_acc:7.3f}")
print(f"loss             {hand_loss:7.3f}   {reported.val_loss:7.3f}")
assert abs(hand_margin - reported.val_reward_margin) < tolerance
assert abs(hand_loss - reported.val_loss) < tolerance
""")

md("""
The trainer packs many sequences into one row and runs the output layer only on answer tokens; we ran
one plain forward pass per sequence. The numbers agree to float rounding, so the reported reward is
exactly $\\beta(\\log\\pi_\\theta - \\log\\pi_\\text{ref})$ as defined above.

## 5 · The reference stayed where it was

The DPO loss only makes sense against a **fixed** reference. With LoRA, the reference is the base
weights, and they never receive a gradient. Check both claims against a freshly loaded copy of the model:
the base weights are untouched, and the model with adapters off computes what the original model computes.
""")

code("""
from nbllm.lora import lora_layers

fresh = dict(base_model.named_parameters())
trained_base = {name.replace("base_model.model.", "").replace(".base_layer", ""): p
                for name, p in policy.named_parameters() if "lora_" not in name}
assert fresh.keys() == trained_base.keys()
changed = [n for n, p in trained_base.items() if not torch.equal(p.detach().float(), fresh[n].to(p.dtype).float())]
assert not changed, changed[:3]

text = tokenizer("Preference tuning compares two answers.", return_tensors="pt").input_ids
with torch.no_grad(), policy.disable_adapter():
    reference_logits = policy(input_ids=text.to(policy.device)).logits.float().cpu()
    base_logits = base_model(input_ids=text.to(base_model.device)).logits.float().cpu()
frozen_dtype = next(p for n, p in policy.named_parameters() if "lora_" not in n).dtype
logit_tol = 1e-3 if frozen_dtype == torch.float32 else 0.5  # on a GPU the frozen base is kept in bfloat16
assert (reference_logits - base_logits).abs().max() < logit_tol

lora_params = sum(p.numel() for n, p in policy.named_parameters() if "lora_" in n)
print(f"{len(fresh)} base tensors unchanged; {len(lora_layers(policy))} adapted layers with {lora_params:,} "
      f"LoRA parameters hold everything DPO learned")
print(f"reference with adapters off == fresh model (max logit difference "
      f"{(reference_logits - base_logits).abs().max().item():.0e})")
""")

md("""
That is the memory argument for LoRA-DPO. `--method dpo-full` trains every weight, so it needs a second,
frozen copy of the whole model as its reference: another 135M parameters (540 MB in float32) here, and
another 14 GB for a 7B model in 16-bit. With LoRA, the 460,800 adapter weights are the only addition.

## 6 · Before and after

`%sft` generated an answer to one validation prompt before and after training (`.samples`). We also ask
a question of our own: the model with adapters off is the model before DPO, so one model object gives
both sides.
""")

code("""
# format(escape="html"): generated text is shown as text, never run as HTML
friendly.samples.style.format(escape="html").set_properties(**{"white-space": "pre-wrap", "text-align": "left"})
""")

code("""
with policy.disable_adapter():
    before = generate(policy, friendly.tokenizer, PROMPT, template="chat", max_new_tokens=MAX_NEW_TOKENS)
after = friendly.generate(PROMPT, max_new_tokens=MAX_NEW_TOKENS)
print(f"{PROMPT}\\n\\nbefore DPO: {before}\\n\\nafter DPO:  {after}")
assert before != after
""")

md("""
Greedy decoding shows the single most likely continuation, so even a small shift in the model's
preferences can change the wording. A handful of steps on 108 pairs is a nudge, not a new personality:
on the shipped pairs the "after" answers tend to reach for analogies and plain words, but the effect is
uneven, and a 135M-parameter model does not become more *correct* by becoming friendlier.

### What DPO costs: open questions

Preference tuning trades things off, and the lecture leaves them as open questions:

- **Helpfulness against other goals.** Pushing one preference (friendly) can cost another (precise,
  complete). Which trade-off is right depends on who asks.
- **Forgetting.** Every step moves the model away from the reference. How much general ability it loses,
  and how to measure that, is an active research question. $\\beta$, the learning rate and the number of
  steps are the knobs; LoRA limits how far the model can move, but does not rule out forgetting.
- **Whose preferences?** The pairs encode the taste of whoever labelled them.

A crude probe of forgetting: the log-probability per token of some unrelated reference answers (from
the shipped instruction set), with the adapters on and off. It tells you *whether* the model's
distribution moved on data DPO never saw, not whether that is bad.
""")

code("""
from nbllm.tokenization import encode

unrelated = load_records("instructions")[:8]
encoded = [encode(tokenizer, {"messages": [{"role": "user", "content": r["instruction"] + ("\\n" + r["input"] if r["input"] else "")},
                                           {"role": "assistant", "content": r["output"]}]}, "chat")
           for r in unrelated]
n_tokens = sum(sum(label != -100 for label in e.labels) for e in encoded)
after_dpo = sum(answer_logp(policy, e) for e in encoded) / n_tokens
with policy.disable_adapter():
    before_dpo = sum(answer_logp(policy, e) for e in encoded) / n_tokens
print(f"unrelated answers, log-probability per token: {before_dpo:.3f} before DPO, {after_dpo:.3f} after")
assert math.isfinite(after_dpo) and after_dpo != before_dpo
""")

# ------------------------------------------------------------------ 7. exercises

md("""
## 7 · Exercises

Write your answers in the cell marked `# your turn` and run it, then run the check cell below it.
The checks print `pass` or `not yet:` with a hint; they never stop the notebook.

### Exercise 1: the loss by hand

A pair has policy log-probabilities $-52.0$ (chosen) and $-61.0$ (rejected), and reference
log-probabilities $-55.0$ (chosen) and $-58.0$ (rejected). With $\\beta = 0.1$, what is its DPO loss?
Store it in `pair_loss`. Then: by how much does the loss fall if $\\beta$ is 0.5 instead? Store the
loss at $\\beta = 0.5$ in `pair_loss_beta_05`.

### Exercise 2: your own pair

Write a question with a friendly answer and a jargon-heavy answer of your own (not from the shipped
set), of about the same length. The check scores it with the trained policy and the reference, using
`rewards` from section 4, and passes when the tuned model prefers your friendly answer (a positive
margin). Then try to fool it: which features of an answer does the model seem to reward?
""")

code("""
# your turn
pair_loss = None           # exercise 1: a float
pair_loss_beta_05 = None   # exercise 1: a float
my_pair = {"prompt": "", "chosen": "", "rejected": ""}   # exercise 2: your friendly (chosen) and jargon (rejected) answers
""")

code("""
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(torch.tensor(margin)).item()


def check_exercises():
    lines = []
    try:
        expected = dpo_loss(-52.0, -61.0, -55.0, -58.0, 0.1)
        expected_05 = dpo_loss(-52.0, -61.0, -55.0, -58.0, 0.5)
        if pair_loss is None or pair_loss_beta_05 is None:
            lines.append("exercise 1 not yet: set pair_loss and pair_loss_beta_05. Hint: the margin is "
                         "beta x [(policy - reference) of chosen minus (policy - reference) of rejected]")
        elif abs(float(pair_loss) - expected) > 1e-3:
            lines.append("exercise 1 not yet: pair_loss is off. Hint: the log-ratios are +3 for chosen and -3 for "
                         "rejected; the loss is -log sigmoid(margin), with the natural logarithm")
        elif abs(float(pair_loss_beta_05) - expected_05) > 1e-3:
            lines.append("exercise 1 not yet: pair_loss_beta_05 is off. Hint: beta multiplies the whole margin")
        else:
            lines.append(f"exercise 1 pass: {expected:.4f} at beta 0.1, {expected_05:.4f} at beta 0.5. The same "
                         "log-ratio gap satisfies the loss sooner with a larger beta, so the policy stays closer "
                         "to the reference")
        fields = ("prompt", "chosen", "rejected")
        if not all(isinstance(my_pair.get(k), str) and my_pair[k].strip() for k in fields):
            lines.append("exercise 2 not yet: fill in my_pair's prompt, chosen and rejected")
        elif any(my_pair["prompt"].strip() == r["prompt"] for r in records):
            lines.append("exercise 2 not yet: that prompt is in the shipped set; write a new question")
        else:
            pair = prepare_preferences([my_pair], friendly.tokenizer, friendly.config)
            r_c, r_r, _ = rewards((pair.train + pair.val)[0])
            if r_c - r_r <= 0:
                lines.append(f"exercise 2 not yet: margin {r_c - r_r:.3f}: the tuned model does not prefer your "
                             "friendly answer. Hint: everyday words and an analogy, about the same length as the "
                             "technical answer")
            else:
                lines.append(f"exercise 2 pass: margin {r_c - r_r:.3f} (reward chosen {r_c:.3f}, rejected "
                             f"{r_r:.3f}). Now swap the answers' lengths or registers and see what moves it")
    except Exception as err:  # a check reports; it never stops the notebook
        lines.append(f"not yet: {type(err).__name__}: {err}")
    return "\\n".join(lines)


print(check_exercises())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **Preference data** are pairs: a prompt, a chosen and a rejected answer. Saying which of two answers
  is better is easier than writing the best one.
- **DPO** trains on the pairs directly. The implicit reward of an answer is
  $\\beta(\\log\\pi_\\theta - \\log\\pi_\\text{ref})$, and the loss $-\\log\\sigma$(reward margin) starts at
  $\\log 2$ when the policy equals the reference. We recomputed the trainer's validation margin and loss
  from plain forward passes and got the same numbers.
- **$\\beta$** decides how far the policy may move from the reference before the loss is satisfied.
- **With LoRA the reference is free**: the base weights never change, so the model with its adapters
  switched off is the reference, and no second copy is needed. `dpo-full` needs that copy.
- **Trade-offs and forgetting are open.** A few steps visibly shift the style. Measuring what else
  shifted takes evaluation beyond the preference pairs (see the evaluation lab).
""")


if __name__ == "__main__":
    LAB.write()
