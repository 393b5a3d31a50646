"""Generate notebooks/02_classify.ipynb (Lab 2: classifier fine-tuning), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "02_classify.ipynb"

LAB = Lab("lab02", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 2 · Classifier fine-tuning: a new output layer for spam or ham

*Replace the head, choose what trains, and track loss and accuracy*

A language model ends in an output layer that scores every token of its vocabulary: 49,152 scores
per position for SmolLM2. A spam filter needs two scores, *spam* and *ham* (not spam). **Classifier
fine-tuning** keeps the pre-trained network that turns text into vectors (the *body*), throws the
vocabulary layer away, and puts a small new linear layer in its place: hidden size in, number of classes
out. Then it trains on labelled examples with ordinary cross-entropy over the classes.

The body is already good at representing text. So you can decide how much of it to train:

- only the new **head**: cheapest, no gradient ever flows into the body;
- the **last transformer block** and the head: a little more capacity, a short backward pass;
- **LoRA** adapters on the attention projections, plus the head;
- **everything**: the most capacity, and the most time and memory per step.

The lecture's point, and this lab's: training only the last layers is much cheaper, training more layers
costs more time, and the only way to know whether it paid off is to track the **loss and the task
accuracy** together.

By the end you will be able to

- say what the new head replaces, how big it is, and how a sentence becomes one vector for it
  (mean pooling in an encoder, the last token in a decoder);
- fine-tune a classifier with `%sft --format classify` and read its loss and accuracy per epoch;
- read a confusion matrix: accuracy, and the precision and recall of the spam class;
- compare head-only, last-block, LoRA and full fine-tuning on trainable parameters, time and accuracy;
- classify new messages with `.predict`.

Everything runs offline on a 2-core CPU in a few minutes: the data set is small (360 messages) and the
main model, all-MiniLM-L6-v2, has 22M parameters. The exercises at the end are yours.
""")

md("""
## Parameters

The cell is tagged `parameters`, so papermill (or you) can override it. The defaults are sized for a
CPU. On a GPU, raise `EPOCHS` and `COMPARE_EPOCHS` to 5 or more and `DECODER_EPOCHS` to 3; the checks
below hold for longer runs too.
""")

code("""
MODEL = "minilm"          # all-MiniLM-L6-v2 sentence encoder (22.7M parameters), packaged offline
DECODER = "smollm2"       # SmolLM2-135M-Instruct, the decoder of sections 2 and 7
SEED = 0                  # fixes the split, the head's initialisation and the batch order
EPOCHS = 3                # epochs of the main run (last block + head)
BATCH_SIZE = 16           # messages per optimizer step
LR = 5e-4                 # learning rate of the main run
COMPARE_EPOCHS = 1        # epochs per method in the comparison of section 6
COMPARE_LR = {"head": 1e-2, "last-block": 5e-4, "lora": 2e-3, "full": 5e-5}  # one per method
DECODER_EPOCHS = 1        # epochs for the decoder's head in section 7
DECODER_LR = 5e-3
""", tags=["parameters"])

LAB.setup()

code("""
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import torch

import nbllm
from nbllm.data import load_records

pd.set_option("display.max_colwidth", 120)
# transformers 5 warns about a deprecated name that peft still calls: noise, not news
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
""")

# ------------------------------------------------------------------ 1. data

md("""
## 1 · The data: 360 text messages

nbllm ships `sms`, a small set of original text messages, each labelled `spam` or `ham`. The spam
imitates the usual kinds: prizes, fake deliveries, bank alerts, "hi mum, I lost my phone". The ham is
everyday chat.
""")

code("""
sms = pd.DataFrame(load_records("sms"))
counts = sms.label.value_counts()
assert len(sms) == 360 and set(counts.index) == {"spam", "ham"}
print(counts.to_string())
sms.sample(6, random_state=SEED)
""")

md("""
Before training anything, set the bar. A "classifier" that always answers the most frequent class
(*ham*) is right on every ham message and wrong on every spam. Any model worth training must beat
this **majority-class baseline**, and on an unbalanced set that bar can be high: on real SMS
collections ham is often 85% or more of the messages, so 85% accuracy means nothing there.
""")

code("""
majority = counts.max() / counts.sum()
print(f"always answering {counts.idxmax()!r} is right on {majority:.1%} of all messages")
""")

# ------------------------------------------------------------------ 2. the head

md("""
## 2 · What gets replaced

A decoder such as SmolLM2 turns each position into a vector of size 576 (its *hidden size*) and
then multiplies it by the output layer, a 576 → 49,152 matrix, to score every token of its vocabulary.
For classification we keep everything up to that vector and replace the output layer by a
576 → 2 layer.
""")

code("""
decoder, decoder_tokenizer = nbllm.load_model(DECODER)
lm_head = decoder.get_output_embeddings()
vocab, hidden = lm_head.weight.shape
new_head = torch.nn.Linear(hidden, 2)
new_head_params = sum(p.numel() for p in new_head.parameters())
assert vocab == len(decoder_tokenizer) and new_head_params == 2 * hidden + 2
print(f"{DECODER}: output layer {hidden} -> {vocab:,} ({lm_head.weight.numel():,} weights)")
print(f"new head:     {hidden} -> 2 ({new_head_params:,} weights: 2 x {hidden} + 2 biases)")
""")

md("""
Two details:

- **Which vector?** A decoder produces one vector per token, and with causal attention only the
  **last** token has read the whole message. So a decoder classifies from the last real token (the
  last one before any padding). An encoder such as MiniLM attends in both directions, so every position
  has seen everything. Like sentence-transformers, nbllm **mean-pools** it: the average of the token
  vectors, ignoring padding.
- **Tied weights.** SmolLM2 reuses its input embedding matrix as its output layer, so "dropping the
  head" removes nothing from memory. The body still needs the embeddings.

MiniLM is an encoder. It never had a vocabulary head in this form, and its hidden size is 384,
so its classifier head is 384 → 2.
""")

code("""
del decoder  # the classifier runs load their own copies
""")

# ------------------------------------------------------------------ 3. main run

md("""
## 3 · Fine-tuning the last block and a new head

`%sft --format classify` takes `{text, label}` records, builds the classifier (the body with a new
head) and trains it with cross-entropy over the classes. It holds out 10% of the messages for
validation (`--val-fraction`) and, after every epoch, reports the validation loss and **accuracy**
on them. `--method last-block` trains the head and the last of MiniLM's six transformer blocks; the
other five blocks and the embeddings stay frozen.
""")

code("""
%sft --model {MODEL} --data sms --format classify --method last-block --epochs {EPOCHS} --batch-size {BATCH_SIZE} --lr {LR} --seed {SEED} --out spam
""")

md("""
`.history` has one row per optimizer step: the training loss on that step's batch, and, at the end
of each epoch, the validation loss and accuracy.
""")

code("""
history = spam.history
per_epoch = history.dropna(subset=["val_acc"])
per_epoch.round(3)
""")

code("""
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(history.epoch, history.loss, ".-", alpha=0.6, label="training loss (one batch)")
left.plot(per_epoch.epoch, per_epoch.val_loss, "o-", label="validation loss")
left.set_xlabel("epoch")
left.set_ylabel("cross-entropy")
left.legend()
right.plot(per_epoch.epoch, per_epoch.val_acc, "o-", color="C2", label="validation accuracy")
right.axhline(majority, color="grey", linestyle="--", label="majority-class baseline")
right.set_xlabel("epoch")
right.set_ylim(0, 1.02)
right.legend(loc="lower right")
fig.suptitle(f"{MODEL}, last block + head")
fig.tight_layout()
plt.show()
""")

md("""
Two curves, two questions. The **loss** says whether the optimisation works: it should fall. The
**accuracy** says whether the task is being solved, measured the way we care about it. They usually move
together, but not always. A model can lower its loss by becoming more confident on messages it already
gets right while misclassifying exactly the same ones, and accuracy can jump in steps while the loss
glides. Track both.
""")

code("""
val_labels = [spam.classes[y] for _, y in spam.val]
val_majority = max(val_labels.count(c) for c in spam.classes) / len(val_labels)
first3, last3 = history.loss.head(3).mean(), history.loss.tail(3).mean()
print(f"training loss, mean of the first and last 3 steps: {first3:.3f} -> {last3:.3f}")
print(f"validation accuracy {spam.accuracy:.3f} on {len(val_labels)} held-out messages; "
      f"the majority class there is {val_majority:.3f}")
assert last3 < first3, "the training loss should go down"
assert per_epoch.val_loss.iloc[-1] < per_epoch.val_loss.iloc[0], "the validation loss should go down"
assert spam.accuracy > val_majority, "a trained classifier should beat always answering the majority class"
""")

# ------------------------------------------------------------------ 4. confusion matrix

md("""
## 4 · The confusion matrix

Accuracy hides which mistakes a classifier makes. The confusion matrix counts them: one row per true
class, one column per predicted class. For a spam filter the two errors are not equally bad. A spam that
gets through (a *false negative*) is an annoyance; a message from a friend that lands in the spam folder
(a *false positive*) can be worse.
""")

code("""
confusion = spam.confusion
confusion
""")

code("""
tp = confusion.loc["true spam", "pred spam"]   # spam caught
fn = confusion.loc["true spam", "pred ham"]    # spam let through
fp = confusion.loc["true ham", "pred spam"]    # ham wrongly flagged
tn = confusion.loc["true ham", "pred ham"]
total = confusion.values.sum()
assert total == len(spam.val)
assert abs((tp + tn) / total - spam.accuracy) < 1e-6  # accuracy is the diagonal
print(f"accuracy  (tp + tn) / all = {(tp + tn) / total:.3f}")
print(f"spam caught: {tp} of {tp + fn};  ham flagged as spam: {fp} of {fp + tn}")
""")

md("""
The exercises at the end ask you to turn these counts into precision and recall.

## 5 · New messages

`.predict` classifies any text and `.predict_proba` gives the class probabilities (a softmax over the
head's two scores). These messages are not in the data set.
""")

code("""
NEW_MESSAGES = [
    "Congratulations! You have been selected for a FREE cruise. Call 0800 123 456 to claim today",
    "URGENT: your bank account is locked. Verify your details at http://secure-bank.example now",
    "Can you pick up milk on your way home?",
    "Running ten minutes late, save me a seat",
]
probs = spam.predict_proba(NEW_MESSAGES)
predicted = spam.predict(NEW_MESSAGES)
assert predicted == list(probs.idxmax(axis=1))
assert predicted[:2] == ["spam", "spam"] and predicted[2:] == ["ham", "ham"], predicted
probs.round(2)
""")

# ------------------------------------------------------------------ 6. what to train

md("""
## 6 · How much of the model to train

Now the comparison. The same data, split and seed, one run per method, each for `COMPARE_EPOCHS`
epoch(s) with a learning rate that suits it. Fewer trainable parameters tolerate (and need) a larger
learning rate, while updating all weights needs a small one. We record the trainable parameters, the
training time per step and the validation accuracy.

This cell runs the script API (`nbllm.sft`), which is what `%sft` calls, in a loop.
""")

code("""
rows, runs = [], {}
for method in ["head", "last-block", "lora", "full"]:
    run = nbllm.sft("sms", model=MODEL, format="classify", method=method, epochs=COMPARE_EPOCHS,
                    batch_size=BATCH_SIZE, lr=COMPARE_LR[method], seed=SEED, progress="none")
    state = run.run.state
    runs[method] = run
    rows.append({"method": method, "trainable": run.run.trainable,
                 "% of model": round(100 * run.run.trainable / run.run.total_params, 3),
                 "s / step": round(state.train_seconds / state.step, 2),
                 "val loss": round(run.val_loss, 3), "val acc": round(run.accuracy, 3)})
comparison = pd.DataFrame(rows).set_index("method")
comparison
""")

md("""
The time column depends on your machine and on what else runs on it, so it changes from run to run.
The pattern does not:

- **head**: a few hundred weights. The backward pass stops at the head, so a step costs little more
  than a forward pass.
- **last-block**: about 8% of the model. The backward pass goes through one block, and the optimizer
  updates its 1.8M weights.
- **lora**: few trainable weights, but gradients must flow back through *every* block to reach the
  adapters, so a step costs about as much as full fine-tuning minus the optimizer's work. LoRA saves
  memory and storage, not compute per step.
- **full**: every weight gets a gradient and an AdamW update (plus two moment buffers per weight in
  memory). It is the slowest per step.

With a strong pre-trained encoder like MiniLM, even the head alone separates spam from ham well:
its mean-pooled sentence vectors were trained to put similar texts close together. A body whose
features fit the task less well needs more of itself trained. That is why you measure instead of
assume.
""")

code("""
head_params, full_params = comparison.loc["head", "trainable"], comparison.loc["full", "trainable"]
assert head_params == 2 * runs["head"].model.head.in_features + 2  # 384 x 2 + 2 = 770
assert head_params * 1000 < full_params  # head-only trains far fewer parameters than full
assert list(comparison.sort_values("trainable").index) == ["head", "lora", "last-block", "full"]
assert comparison["val acc"].max() > val_majority
print(f"full fine-tuning trains {full_params / head_params:,.0f}x as many parameters as the head alone")
print("ranked by validation accuracy:", ", ".join(comparison["val acc"].sort_values(ascending=False).index))
""")

md("""
Which method wins on accuracy in one short epoch depends on the learning rates we picked, and with 36
validation messages one message is 2.8 points of accuracy. Do not read too much into a gap of one or two
messages. What does not depend on luck is the cost column: the trainable parameters, and with them the
optimizer memory, grow by more than four orders of magnitude from head to full.

## 7 · A decoder as a classifier

The same recipe works on a decoder. SmolLM2 has six times MiniLM's parameters, and was trained to
predict the next token, not to embed sentences. Here only its new head trains, on the hidden state of
the last real token.
""")

code("""
%sft --model {DECODER} --data sms --format classify --method head --epochs {DECODER_EPOCHS} --batch-size {BATCH_SIZE} --lr {DECODER_LR} --seed {SEED} --out spam_decoder
""")

code("""
assert spam_decoder.model.pooling == "last" and spam.model.pooling == "mean"
assert spam_decoder.summary()["trainable"] == new_head_params  # 576 x 2 + 2, as in section 2
print(f"{DECODER} head only: validation accuracy {spam_decoder.accuracy:.3f} "
      f"(majority baseline {val_majority:.3f})")
spam_decoder.confusion
""")

md("""
The decoder's last-token state was never trained to summarise a message for a linear read-out, yet a
head of 1,154 weights on it beats the baseline by far: next-token prediction on a large corpus already
separates "prize, claim, call now" from "see you at lunch". Compare it with MiniLM's results above.
Either way, the bill is different: every step runs a 135M-parameter forward pass to train 1,154
weights, and unfreezing the last block or adding LoRA would add a backward pass through that model. A
larger model is not automatically a better classifier. What matters is how well its features fit the
task, and how much of it you can afford to run and to train.
""")


# ------------------------------------------------------------------ 8. exercises

md("""
## 8 · Exercises

Write your answers in the cell marked `# your turn` and run it, then run the check cell below it.
The checks print `pass` or `not yet:` with a hint; they never stop the notebook.

### Exercise 1: count the last block

`--method last-block` on MiniLM trains one BERT-style transformer block plus the head. Count its
parameters **by hand** from the sizes alone: hidden size 384, feed-forward size 1536. A block has
four attention projections (query, key, value, output) with biases, a LayerNorm (a weight and a bias per
feature) after attention, two feed-forward linear layers with biases, and another LayerNorm.
Add the 770 parameters of the head and store the total in `last_block_params`.

### Exercise 2: precision and recall

From the confusion matrix of section 4, compute the **precision** of the spam class (of the messages
flagged as spam, the share that really is spam) and its **recall** (of the real spam, the share that
was caught). Store them in `spam_precision` and `spam_recall` as numbers between 0 and 1.
""")

code("""
# your turn
last_block_params = None   # exercise 1: an integer
spam_precision = None      # exercise 2: a float
spam_recall = None         # exercise 2: a float
""")

code("""
def check_exercises():
    lines = []
    try:
        true_params = runs["last-block"].run.trainable
        if last_block_params is None:
            lines.append("exercise 1 not yet: set last_block_params. Hint: a linear layer n -> m has "
                         "n * m weights and m biases; a LayerNorm over 384 features has 2 * 384")
        elif int(last_block_params) != true_params:
            lines.append(f"exercise 1 not yet: {int(last_block_params):,} is not what nbllm trains. Hint: four "
                         "384 -> 384 projections, 384 -> 1536 and 1536 -> 384 in the feed-forward part, two "
                         "LayerNorms, every linear layer with its bias, plus the head")
        else:
            lines.append(f"exercise 1 pass: {true_params:,} parameters, "
                         f"{100 * true_params / runs['last-block'].run.total_params:.1f}% of the model")
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn)
        if spam_precision is None or spam_recall is None:
            lines.append("exercise 2 not yet: set spam_precision and spam_recall. Hint: both have the "
                         "spam caught (tp) on top; they differ in what they divide by")
        elif abs(float(spam_precision) - precision) > 1e-3 or abs(float(spam_recall) - recall) > 1e-3:
            lines.append("exercise 2 not yet: check which errors go in each denominator. Hint: precision "
                         "asks about the 'pred spam' column, recall about the 'true spam' row")
        else:
            lines.append(f"exercise 2 pass: precision {precision:.3f}, recall {recall:.3f}. A spam filter "
                         "usually trades recall for precision: a lost real message costs more than a "
                         "missed spam")
    except Exception as err:  # a check reports; it never stops the notebook
        lines.append(f"not yet: {type(err).__name__}: {err}")
    return "\\n".join(lines)


print(check_exercises())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **Classifier fine-tuning replaces the output layer.** The vocabulary head (576 → 49,152 for
  SmolLM2) gives way to a new linear layer from the hidden size to the number of classes. The
  sentence vector it reads is the mean of the token states in an encoder, and the last real token's
  state in a decoder.
- **Choose what trains.** Head only (770 weights on MiniLM), the last block (1.8M, 8%), LoRA, or
  everything (22.7M). Fewer trainable layers mean a shorter backward pass, less optimizer memory and
  faster steps. LoRA cuts trainable parameters but not the backward pass.
- **Track loss and task accuracy.** The loss tells you the optimisation works; accuracy against the
  majority-class baseline tells you the task is solved. The confusion matrix says which errors remain,
  and precision and recall weigh them.
- **A good body makes a cheap classifier.** With sentence-trained features, the head alone already
  beats the baseline by far. Measure before you pay for full fine-tuning.

Next: instruction fine-tuning, where the output layer stays and the model learns to answer.
""")


if __name__ == "__main__":
    LAB.write()
