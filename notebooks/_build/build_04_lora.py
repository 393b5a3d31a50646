"""Generate notebooks/04_lora.ipynb (Lab 4: LoRA), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "04_lora.ipynb"

LAB = Lab("lab04", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 4 · LoRA: ranks and targets, trainable parameters, merge, one base with adapters per task

Full fine-tuning updates every weight of the model. If you serve *n* tasks that way, you keep *n*
complete copies of the model. For GPT-3 175B in 16-bit precision that is 350 GB per task.
Parameter-efficient fine-tuning (PEFT) leaves the pre-trained weights alone and trains something small
next to them. The lecture compares several ways to do that: train only the biases (BitFit), insert small
adapter layers, or learn a few "soft prompt" vectors (prefix and prompt tuning). This lab is about the
method most people use today, **LoRA** (low-rank adaptation).

The idea fits in one line. Take a pre-trained weight matrix $W_0$ of shape $d \\times k$ and freeze it.
Learn its *change* as a product of two thin matrices, $B$ ($d \\times r$) and $A$ ($r \\times k$),
with a rank $r$ far below $d$ and $k$:

$$h = W_0 x + \\frac{\\alpha}{r} B A x .$$

- $A$ starts random (the paper draws it from a Gaussian) and $B$ starts at **zero**, so $BA = 0$ and
  training begins exactly at the pre-trained model.
- Only $A$ and $B$ train: $r(d + k)$ numbers instead of $d k$.
- The update is scaled by $\\alpha / r$. The paper keeps $\\alpha$ fixed when it tries another $r$, so that
  it does not have to retune the learning rate for every rank.
- The paper mostly adapts the attention projections $W_q$ and $W_v$ and leaves everything else frozen.

What the LoRA paper reports, in brief:

- **GPT-3 175B**: about 10,000 times fewer trainable parameters than full fine-tuning. With a budget
  of 18M trainable parameters, adapting $W_q$ and $W_v$ together worked best (WikiSQL 73.7, MultiNLI
  91.3). Even rank **1** on $W_q + W_v$ reached 73.4 and 91.3. The model's full width is 12,288, so
  the update that matters has very low rank. Adapting $W_q$ alone needed a larger rank to catch up.
- **RoBERTa-base**: 0.3M LoRA parameters gave a GLUE average of 87.2, against 86.4 for full
  fine-tuning of all 125M parameters.
- **GPT-2 Medium**: 0.35M LoRA parameters scored 70.4 BLEU on E2E, against 68.2 for full fine-tuning.

By the end of this lab you will be able to

- count a LoRA adapter's trainable parameters by hand, for any rank and set of target modules;
- show that a fresh adapter leaves the model's outputs exactly unchanged, and see what training changes;
- merge an adapter into the weights ($W_0 + \\frac{\\alpha}{r} BA$) and take it out again;
- keep one base model with a small adapter file per task, and switch tasks in place;
- run a rank sweep, and say what a short run on a small model can and cannot tell you.

Everything runs offline on SmolLM2-135M-Instruct. The whole notebook takes about 5 minutes on a 2-core
CPU, because every training run is only a few steps long. That is enough to watch the mechanics, but
not enough to reproduce the paper's numbers. The exercises at the end are yours.
""")

md("""
## Parameters

The cell is tagged `parameters`, so papermill (or you) can override it. The step counts are sized for a
CPU. On a GPU, raise `STEPS` to a few hundred and `SWEEP_STEPS` to 100 or more, and try
`SWEEP_RANKS = "1,2,4,8,64"` with `SWEEP_RECORDS = 320` (the whole shipped set). The checks below
hold for longer runs too.
""")

code("""
MODEL = "smollm2"          # SmolLM2-135M-Instruct, packaged for offline use
RANK = 8                   # LoRA rank r of the adapters we train
ALPHA = 16                 # scaling = ALPHA / RANK = 2 (nbllm's default alpha is 2r)
TARGETS = "q_proj,v_proj"  # the paper's choice: W_q and W_v in every attention block
STEPS = 8                  # steps for the task adapter (about 2-3 s each on a 2-core CPU)
STYLE_STEPS = 12           # steps for the style adapter (short examples: under a second each)
BATCH_SIZE = 4             # examples per optimizer step
LR = 1e-3                  # peak learning rate; nbllm's LoRA default (2e-4) is meant for longer runs
STYLE_LR = 2e-3            # the style adapter has very little to learn, and few steps to learn it
SWEEP_RANKS = "1,4,16"     # ranks for the sweep in section 6
SWEEP_STEPS = 6            # steps per rank in the sweep
SWEEP_RECORDS = 160        # records the sweep draws on (10% held out for validation)
MAX_NEW_TOKENS = 24        # length of the generations we compare
PROMPT = "Give three tips for staying focused while studying."
""", tags=["parameters"])

LAB.setup()

code("""
import warnings

import pandas as pd
import torch

import nbllm
from nbllm.generation import generate
from nbllm.lora import lora_layers

# transformers 5 warns about a deprecated name that peft still calls on every attach: noise, not news
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
""")

# ------------------------------------------------------------------ 1. counting

md("""
## 1 · Attach an adapter and count what trains

`%lora VAR --base MODEL` loads a model into the variable `VAR` and attaches a fresh adapter to it.
The other `%lora` actions work on that variable. Assigning a magic to a name (`x = %lora ...`) keeps
the result without printing its table; we print its one-line summary instead.
""")

code("""
attached = %lora lab --base {MODEL} --r {RANK} --alpha {ALPHA} --targets {TARGETS}
print(attached)
""")

md("""
`--inspect` lists every adapted module: its shape (out x in), the rank, $\\alpha$ and the scale
$\\alpha / r$, how many LoRA parameters it trains, and how many full fine-tuning of that module would train.
""")

code("""
%lora lab --inspect --out report
""")

md("""
### The count, by hand

SmolLM2-135M has 30 transformer blocks of width $d = 576$. Its attention uses *grouped-query
attention*: 9 query heads share 3 key/value heads of size 64. So `q_proj` maps 576 to 576, while
`v_proj` maps 576 to only $3 \\times 64 = 192$. PyTorch stores a linear layer's weight as
(out, in), so the adapter of a layer with weight $d_\\text{out} \\times d_\\text{in}$ has
$A$: $r \\times d_\\text{in}$ and $B$: $d_\\text{out} \\times r$, that is $r(d_\\text{in} + d_\\text{out})$ parameters.
""")

code("""
config = lab.model.config  # the base model's config, through the peft wrapper
d_model = config.hidden_size                             # 576
d_kv = config.num_key_value_heads * config.head_dim      # 3 x 64 = 192
n_blocks = config.num_hidden_layers                      # 30

q_by_hand = RANK * (d_model + d_model)   # A: r x 576, B: 576 x r
v_by_hand = RANK * (d_model + d_kv)      # A: r x 576, B: 192 x r
per_block = q_by_hand + v_by_hand
total_by_hand = n_blocks * per_block

table = report.to_pandas()
q_row = table.set_index("module").loc["model.layers.0.self_attn.q_proj"]
v_row = table.set_index("module").loc["model.layers.0.self_attn.v_proj"]
assert (q_row["shape"], v_row["shape"]) == (f"{d_model}x{d_model}", f"{d_kv}x{d_model}")
assert (q_row.lora_params, v_row.lora_params) == (q_by_hand, v_by_hand)
assert len(table) == 2 * n_blocks and report.trainable == table.lora_params.sum() == total_by_hand

print(f"q_proj: {RANK} x ({d_model} + {d_model}) = {q_by_hand:,}")
print(f"v_proj: {RANK} x ({d_model} + {d_kv}) = {v_by_hand:,}")
print(f"{n_blocks} blocks x {per_block:,} = {total_by_hand:,} trainable parameters")
""")

md("""
How does that compare with full fine-tuning? There are two fair comparisons: against the whole model
(what full fine-tuning would train), and against only the matrices LoRA adapts (what training $W_q$
and $W_v$ directly would cost).
""")

code("""
summary = report.summary()
model_params = report.base_params
full_adapted = table.full_params.sum()

assert abs(summary["pct_of_model"] - 100 * total_by_hand / model_params) < 1e-3
assert abs(summary["reduction_vs_full_ft"] - model_params / total_by_hand) < 0.1
print(f"the model has {model_params:,} parameters")
print(f"LoRA trains {total_by_hand:,} = {100 * total_by_hand / model_params:.3f}% of them: "
      f"{model_params / total_by_hand:.0f}x fewer than full fine-tuning")
print(f"the adapted q_proj and v_proj matrices alone hold {full_adapted:,} parameters: "
      f"{full_adapted / total_by_hand:.1f}x more than their adapters")
print(f"so {model_params / total_by_hand:.0f}x = {full_adapted / total_by_hand:.1f}x (low rank) "
      f"x {model_params / full_adapted:.1f}x (the rest of the model is not adapted at all)")

gpt3_params, gpt3_lora = 175e9, 18e6  # the paper's GPT-3 budget: 18M trainable parameters
print(f"GPT-3: 175B / 18M = {gpt3_params / gpt3_lora:,.0f}x fewer (the paper's 'about 10,000x')")
""")

md("""
Why only a few hundred times here, and about 10,000 times for GPT-3? The saving has two factors. The
first is the low rank: for a square $d \\times d$ matrix it is $d^2 / (2rd) = d / 2r$, which grows with the
width. That is 36x for SmolLM2's `q_proj` at $r = 8$ ($d = 576$), but 1,536x for GPT-3's at $r = 4$
($d = 12{,}288$; rank 4 on $W_q$ and $W_v$ is about the paper's 18M budget). The second factor is
everything that is not adapted at all: all but $W_q$ and $W_v$. That is about 10x here and about 6x
for GPT-3.

### Ranks and targets: a small version of the paper's table

The count depends only on the shapes, so we can fill in a table for any rank and any set of targets
without training anything. `all-linear` adapts all seven linear layers of every block: `q_proj`,
`k_proj`, `v_proj`, `o_proj` and the MLP's `gate_proj`, `up_proj` and `down_proj` (not the output head).
""")

code("""
block0 = lab.model.get_base_model().model.layers[0]  # peft's wrapper -> the transformers model
shapes = {}  # short name -> (out, in) of block 0's base weights
for name, module in block0.named_modules():
    short = name.rsplit(".", 1)[-1]
    if short.endswith("_proj"):  # q_proj and v_proj are LoRA wrappers now: read their base layer
        weight = module.get_base_layer().weight if hasattr(module, "get_base_layer") else module.weight
        shapes[short] = tuple(weight.shape)
assert len(shapes) == 7, shapes


def lora_count(r, targets):
    \"\"\"Trainable LoRA parameters of the whole model: r (d_in + d_out) per adapted matrix.\"\"\"
    return n_blocks * sum(r * (shapes[t][1] + shapes[t][0]) for t in targets)


QV, ALL_LINEAR = ["q_proj", "v_proj"], list(shapes)
rank_table = pd.DataFrame([
    {"r": r,
     "q,v params": lora_count(r, QV), "q,v % of model": round(100 * lora_count(r, QV) / model_params, 3),
     "all-linear params": lora_count(r, ALL_LINEAR),
     "all-linear % of model": round(100 * lora_count(r, ALL_LINEAR) / model_params, 3)}
    for r in [1, 2, 4, 8, 64]
])
assert lora_count(RANK, QV) == report.trainable
print(pd.Series(shapes, name="(out, in)").to_string())
rank_table
""")

md("""
The count is linear in $r$, and all-linear costs about 5 times as much as $W_q + W_v$ at the same rank:
the MLP matrices are the widest (1536), and k/v the narrowest (192). Rank 64 on all seven matrices
trains about a seventh of the model, which is hardly parameter-efficient any more. The paper's finding
is that you rarely need that much: on GPT-3, a tiny rank on the right matrices was already enough.
Section 6 asks what our small model can tell us about that.
""")

# ------------------------------------------------------------------ 2. step 0

md("""
## 2 · Step 0 is the base model

$B = 0$ makes the update $BA$ exactly zero. So a freshly attached adapter should not change a single
logit. We load a second, plain copy of the model and compare.
""")

code("""
base_model, tokenizer = nbllm.load_model(MODEL)
device = next(lab.model.parameters()).device
probe = tokenizer("Low-rank adapters leave the pre-trained weights frozen.", return_tensors="pt")
probe = probe.input_ids.to(device)


def logits_of(model):
    with torch.no_grad():
        return model.eval()(probe).logits.float()


base_logits = logits_of(base_model)
assert torch.equal(logits_of(lab.model), base_logits)  # bit for bit, not just close
print(f"{tuple(base_logits.shape)} logits: the adapted model and the base agree exactly")

# tolerances for "equal up to rounding" below: float32 on a CPU, much looser in a GPU's bfloat16
W_TOL, LOGIT_TOL = (1e-6, 1e-4) if next(base_model.parameters()).dtype == torch.float32 else (5e-2, 0.5)
""")

md("""
Where does that exactness come from? Look inside one adapted layer. `nbllm.lora.lora_layers` lists
peft's LoRA layers. Each holds the frozen base layer and, per adapter name, the matrices $A$ and $B$.
""")

code("""
layer_name, layer = lora_layers(lab.model)[0]  # block 0, q_proj
A = layer.lora_A["default"].weight
B = layer.lora_B["default"].weight
W0 = layer.get_base_layer().weight
print(layer_name.removeprefix("base_model.model."))
pd.DataFrame([
    {"matrix": "W0 (frozen)", "shape": tuple(W0.shape), "trains": W0.requires_grad,
     "max |x|": round(W0.abs().max().item(), 4), "all zero": bool((W0 == 0).all())},
    {"matrix": "A", "shape": tuple(A.shape), "trains": A.requires_grad,
     "max |x|": round(A.abs().max().item(), 4), "all zero": bool((A == 0).all())},
    {"matrix": "B", "shape": tuple(B.shape), "trains": B.requires_grad,
     "max |x|": round(B.abs().max().item(), 4), "all zero": bool((B == 0).all())},
])
""")

code("""
assert (B == 0).all() and not (A == 0).all()
assert not W0.requires_grad and A.requires_grad and B.requires_grad
bound = 1 / W0.shape[1] ** 0.5  # peft's default init for A: uniform in +-1/sqrt(d_in)
assert A.abs().max().item() <= bound
print(f"A is random in [-{bound:.4f}, {bound:.4f}], B is zero, so B @ A = 0 exactly")
""")

md("""
One difference from the paper: peft does not draw $A$ from a Gaussian by default. It uses PyTorch's
Kaiming-uniform initialisation, which here means uniform in $\\pm 1/\\sqrt{576}$.
(`LoraConfig(init_lora_weights="gaussian")` gives the paper's choice.) Either way, what makes step 0
exact is $B = 0$. Why not start both at zero? Each one's gradient is multiplied by the other, so both
gradients would be zero too, and the adapter would never move.
""")

# ------------------------------------------------------------------ 3. training

md("""
## 3 · Train the adapter

`%sft --model lab` trains the adapter that is attached to `lab` *in place*. Only $A$ and $B$ get
gradients, and $W_0$ stays frozen. The data is nbllm's shipped `instructions` set (320 Alpaca-style
records). First, the model's answer before training, greedy and short:
""")

code("""
def answer(model, prompt, tokens=MAX_NEW_TOKENS):
    \"\"\"Greedy continuation of an instruction, through the Alpaca template the adapters train with.\"\"\"
    return generate(model, tokenizer, {"instruction": prompt}, template="alpaca", max_new_tokens=tokens)


before = answer(lab.model, PROMPT)
print(before)
""")

code("""
%sft --model lab --data instructions --max-steps {STEPS} --batch-size {BATCH_SIZE} --lr {LR} --eval-every {STEPS} --samples 0 --out task
""")

code("""
after = answer(lab.model, PROMPT)
print("before:", before)
print("after: ", after)

assert task.model is lab.model                                # trained in place
assert not (B == 0).all()                                     # B has moved...
base_W0 = base_model.get_submodule(layer_name.removeprefix("base_model.model.")).weight
assert torch.equal(W0, base_W0)                               # ...W0 has not
delta = layer.scaling["default"] * (B @ A)
print(f"after {task.stats['steps']} steps: max |B| = {B.abs().max().item():.4f}, "
      f"the update (alpha/r) B A has rank {torch.linalg.matrix_rank(delta.detach()).item()} "
      f"and norm {delta.norm().item():.4f} (W0's norm: {W0.norm().item():.1f})")
""")

md("""
A few steps move the adapter a little: the update to block 0's $W_q$ is tiny next to $W_0$, and its
rank is at most $r$ by construction. On a model that already follows instructions, a few dozen
training examples mostly nudge the wording, if they change the answer at all. Lab 3 looks at what
instruction tuning changes; here we care about the mechanics.
""")

# ------------------------------------------------------------------ 4. merge

md("""
## 4 · Merge: fold the adapter into the weights

At inference time the adapter costs an extra matrix product per adapted layer. Since $W_0$ and $BA$
have the same shape, we can add them once, $W = W_0 + \\frac{\\alpha}{r} BA$, and run the model at
exactly its original cost. That is `--merge`. `--unmerge` subtracts the update again, so you can go
back to training or switch adapters. First the merge by hand, for block 0's `q_proj`:
""")

code("""
scaling = layer.scaling["default"]
assert scaling == ALPHA / RANK
W0_before = W0.detach().clone()
W_expected = W0_before + scaling * (B @ A).detach()
adapter_logits = logits_of(lab.model)  # outputs with the adapter applied on the side
print(f"scaling = alpha / r = {ALPHA} / {RANK} = {scaling}")
""")

code("""
merged = %lora lab --merge
print(merged)
""")

code("""
merged_logits = logits_of(lab.model)
W_merged = layer.get_base_layer().weight.detach()
weight_error = (W_merged - W_expected).abs().max().item()
logit_error = (merged_logits - adapter_logits).abs().max().item()

assert merged.merged and layer.merged
assert weight_error < W_TOL, weight_error
assert logit_error < LOGIT_TOL, logit_error
print(f"merged weight vs W0 + (alpha/r) B A by hand: max difference {weight_error:.1e}")
print(f"logits, merged vs adapter on the side:       max difference {logit_error:.1e}")
""")

md("""
The differences are float32 rounding, not approximation: the merged model computes the same function
with one matrix per layer. Now take the adapter out again:
""")

code("""
unmerged = %lora lab --unmerge
print(unmerged)

restore_error = (layer.get_base_layer().weight - W0_before).abs().max().item()
assert not unmerged.merged and restore_error < W_TOL, restore_error
assert (logits_of(lab.model) - adapter_logits).abs().max().item() < LOGIT_TOL
print(f"W0 restored to within {restore_error:.1e}; the adapter is back on the side")
""")

# ------------------------------------------------------------------ 5. many adapters

md("""
## 5 · One base, many adapters

Since $W_0$ never changes, a task is fully described by its adapter. `--save` writes the active
adapter alone: its $A$ and $B$ matrices as safetensors, plus a small config, and never the base weights.
""")

code("""
import tempfile
from pathlib import Path

ADAPTER_DIR = Path(tempfile.mkdtemp(prefix="lab04-adapters-"))
saved = %lora lab --save {ADAPTER_DIR}/task


def folder_bytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


adapter_bytes = (ADAPTER_DIR / "task" / "adapter_model.safetensors").stat().st_size
model_bytes = sum(p.numel() * p.element_size() for p in base_model.parameters())
assert adapter_bytes < model_bytes / 100
print("files:", sorted(f.name for f in (ADAPTER_DIR / "task").iterdir()))
print(f"adapter: {adapter_bytes / 1e3:,.0f} KB (folder {folder_bytes(ADAPTER_DIR / 'task') / 1e3:,.0f} KB)   "
      f"base model: {model_bytes / 1e6:,.0f} MB   ratio {model_bytes / adapter_bytes:,.0f}x")
""")

md("""
The adapter file holds $r(d_\\text{in} + d_\\text{out})$ float32 numbers per adapted matrix, 4 bytes per
trainable parameter, and nothing else of any size. A hundred tasks cost a hundred such files next to
one copy of the base.

### A second task: a house style

Now a second adapter for a different, deliberately simple task: every answer starts with `Answer:`.
`%lora lab --name style` attaches it beside the first one (which peft calls `default`) and makes it
the active one. The training examples go straight into the cell as JSONL.
""")

code("""
attached_style = %lora lab --r {RANK} --alpha {ALPHA} --name style
print(attached_style)
task_B_before = B.detach().clone()  # the first adapter's B, to check that it is left alone
""")

code("""
%%sft --model lab --max-steps {STYLE_STEPS} --batch-size {BATCH_SIZE} --lr {STYLE_LR} --val-fraction 0 --samples 0 --out style_run
{"instruction": "What is the boiling point of water at sea level?", "output": "Answer: 100 degrees Celsius."}
{"instruction": "How many legs does a spider have?", "output": "Answer: eight."}
{"instruction": "What is the capital of Japan?", "output": "Answer: Tokyo."}
{"instruction": "Which planet is closest to the Sun?", "output": "Answer: Mercury."}
{"instruction": "What gas do plants absorb from the air?", "output": "Answer: carbon dioxide."}
{"instruction": "How many days are in a leap year?", "output": "Answer: 366."}
{"instruction": "Who wrote Romeo and Juliet?", "output": "Answer: William Shakespeare."}
{"instruction": "What is the largest ocean on Earth?", "output": "Answer: the Pacific Ocean."}
{"instruction": "What is 12 times 12?", "output": "Answer: 144."}
{"instruction": "What language is spoken in Brazil?", "output": "Answer: Portuguese."}
{"instruction": "What is the chemical symbol for gold?", "output": "Answer: Au."}
{"instruction": "How many continents are there?", "output": "Answer: seven."}
{"instruction": "What is the freezing point of water in Fahrenheit?", "output": "Answer: 32 degrees Fahrenheit."}
{"instruction": "Which animal is known as the king of the jungle?", "output": "Answer: the lion."}
{"instruction": "What is the square root of 81?", "output": "Answer: 9."}
{"instruction": "What color do you get by mixing blue and yellow?", "output": "Answer: green."}
""")

md("""
A few epochs over 16 examples drive the training loss well down. Look at the run's header, though: it
counts twice as many trainable parameters as the `style` adapter has (921,600 against 460,800 at
$r = 8$). nbllm marks the LoRA
parameters of *every* adapter on the model as trainable, the inactive `default` included. Only the
active adapter takes part in the forward pass, so only its parameters get gradients, and the optimizer
skips parameters without one. So the count is misleading but the training is right. The next cell
checks that `default` did not move, then saves `style` next to it.
""")

code("""
assert torch.equal(B, task_B_before)  # training 'style' did not touch 'default'
style_saved = %lora lab --save {ADAPTER_DIR}
print("peft writes a named adapter into a subfolder of its name:",
      sorted(p.relative_to(ADAPTER_DIR).as_posix() for p in ADAPTER_DIR.glob("*/adapter_model.safetensors")))
""")

md("""
### Switching tasks in place

Now the deployment picture: a **fresh** base model, and the two adapter folders from disk.
`--load DIR --name NAME` adds an adapter under a name, and `--use NAME` switches the active one. The
base weights are shared; switching changes which small $B A$ is added to them, and nothing is copied.
""")

code("""
loaded = %lora shared --base {MODEL} --load {ADAPTER_DIR}/task --name task
loaded = %lora shared --load {ADAPTER_DIR}/style --name style
print(loaded)
""")

code("""
QUESTION = "What is the tallest mountain in the world?"

%lora shared --use task
task_logits, task_answer = logits_of(shared.model), answer(shared.model, QUESTION)
%lora shared --use style
style_logits, style_answer = logits_of(shared.model), answer(shared.model, QUESTION)
with shared.model.disable_adapter():  # peft's context manager: the bare base, for comparison
    base_answer = answer(shared.model, QUESTION)
%lora shared --use task
back_logits = logits_of(shared.model)

print(f"{QUESTION}\\n  base:  {base_answer}\\n  task:  {task_answer}\\n  style: {style_answer}")
""")

md("""
Running `%lora` as a plain statement inside a cell shows nothing, because only a cell's last line is
displayed. Each switch took milliseconds. The checks: the adapter loaded from disk onto a fresh base
reproduces the trained model exactly, switching changes the outputs, and switching back restores them
bit for bit.
""")

code("""
lab_task_logits = adapter_logits  # from section 4: 'lab' with the trained task adapter
assert torch.equal(task_logits, lab_task_logits)   # save -> load onto a fresh base: exact
assert not torch.allclose(style_logits, task_logits, atol=1e-3)
assert torch.equal(back_logits, task_logits)       # switching back: exact
assert style_answer.startswith("Answer:") and not task_answer.startswith("Answer:")
print("task adapter from disk == trained model; style differs; switching back restores the task exactly")
""")

# ------------------------------------------------------------------ 6. sweep

md("""
## 6 · A rank sweep

How large should $r$ be? `%lora VAR --sweep` runs the same short LoRA fine-tune once per rank, each
on a fresh copy of the base model, and tabulates trainable parameters against the final training loss
and the validation loss. It keeps $\\alpha = 2r$, so the scale $\\alpha / r = 2$ is the same for every
rank. (The paper did it the other way round: it fixed $\\alpha$ and let $\\alpha / r$ shrink as $r$ grew.)
""")

md("""
The sweep does not let us choose how often validation runs, and a run this short scores the
validation set after almost every step. To keep that affordable on a CPU, we sweep on the first
`SWEEP_RECORDS` records of the shipped set (10% of them are held out), passed as a variable.
""")

code("""
from nbllm.data import load_records

sweep_data = load_records("instructions")[:SWEEP_RECORDS]
""")

code("""
%lora lab --sweep {SWEEP_RANKS} --data sweep_data --max-steps {SWEEP_STEPS} --batch-size {BATCH_SIZE} --out sweep
""")

code("""
sweep_table = sweep.to_pandas()
assert list(sweep_table.r) == [int(r) for r in SWEEP_RANKS.split(",")]
assert all(row.trainable == lora_count(row.r, QV) for row in sweep_table.itertuples())  # linear in r
spread = sweep_table.val_loss.max() - sweep_table.val_loss.min()
print(f"trainable parameters grow {sweep_table.trainable.max() / sweep_table.trainable.min():.0f}x "
      f"across the sweep; validation loss spreads by {spread:.3f}")
sweep_table["trainable / r"] = sweep_table.trainable // sweep_table.r
sweep_table.round(4)
""")

md("""
Read this table with care, and read the plot's y-axis first: with the CPU settings the whole range is a
few hundredths of a nat. Every run starts from the same model and sees the same batches in the same
order, at nbllm's default LoRA learning rate (`--sweep` has no `--lr` flag), for a handful of steps. So
the runs differ only in the rank. The differences are not noise, but they are small, and they measure
**speed, not capacity**. $BA$ is a sum of $r$ rank-one pieces, one per column of $B$. Adam moves every
entry of $B$ by roughly the learning rate per step, whatever $r$ is, and $\\alpha / r$ is fixed here.
So a rank-16 adapter adds sixteen such pieces to $W$ per step where rank 1 adds one. A larger rank
takes larger steps and gets further in a few of them. (The paper's fixed $\\alpha$ shrinks $\\alpha / r$ as
$r$ grows, which works against this.) Whether it would also end up *better* is a
question for runs that converge.

What the sweep shows cleanly is what rank *costs*: the parameter count is exactly linear in $r$
(the last column above). The paper answers what rank *buys*, for GPT-3 with $W_q + W_v$: rank 1 already
scored 73.4 on WikiSQL and 91.3 on MultiNLI, and larger ranks up to 64 added at most a few tenths of a
point. The update a task needs can have very low rank. A task far from what the model saw in
pre-training (a new language, a new domain) may need more. To find out for your own task, run the sweep
on a GPU for a few hundred steps per rank (see the parameters cell), tune the learning rate with it,
and compare validation losses then.
""")

# ------------------------------------------------------------------ 7. exercises

md("""
## 7 · Exercises

Write your answer in the cell marked `# your turn` and run it, then run the check cell below it.
The checks print `pass` or `not yet:` with a hint, and they never stop the notebook. They compare your
numbers with what `%lora --inspect` reports for a real all-linear adapter.

### Exercise 1: one block, all seven linear layers

How many parameters does a rank-`EX_RANK` LoRA adapter train on **all seven** linear layers of **one**
SmolLM2 block (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`)? Work it
out from the widths alone: $d = 576$, 3 key/value heads of size 64, MLP width 1536. Store it in
`block_params`.

### Exercise 2: a 1% budget

With `--targets all-linear`, what is the **largest** rank whose adapter still trains at most 1% of the
model's parameters (`report.base_params`)? Store it in `max_rank_1pct`. Compare it with the
$W_q, W_v$ column of the table in section 1.
""")

code("""
# your turn
EX_RANK = 4
block_params = None   # exercise 1: an integer
max_rank_1pct = None  # exercise 2: an integer
""")

code("""
from nbllm import api

_reference = {}


def all_linear_reference(r):
    \"\"\"%lora --inspect of a rank-r all-linear adapter on a fresh base (attached once, never trained).\"\"\"
    if r not in _reference:
        holder = api.load(MODEL)
        _reference[r] = api.lora(holder, "attach", r=r, alpha=2 * r, targets="all-linear")
        del holder
    return _reference[r]


def check_exercises():
    try:
        wide = all_linear_reference(EX_RANK)
        rows = wide.to_pandas()
        true_block = int(rows[rows.module.str.startswith("model.layers.0.")].lora_params.sum())
        per_rank = wide.trainable // EX_RANK  # the whole model's count is linear in r
        true_max = wide.base_params // 100 // per_rank
        lines = []
        if block_params is None:
            lines.append("exercise 1 not yet: set block_params. Hint: r (d_in + d_out) for each of the seven matrices; "
                         "k_proj and v_proj map 576 -> 192, the MLP goes 576 -> 1536 -> 576")
        elif int(block_params) != true_block:
            lines.append(f"exercise 1 not yet: {int(block_params):,} is not what --inspect reports. Hint: check "
                         "k_proj/v_proj (grouped-query attention) and the MLP widths, and that you used r = EX_RANK")
        else:
            lines.append(f"exercise 1 pass: {true_block:,} per block, {n_blocks * true_block:,} for all {n_blocks} blocks")
        if max_rank_1pct is None:
            lines.append("exercise 2 not yet: set max_rank_1pct. Hint: the count is linear in r; "
                         "how many parameters does r = 1 cost with all-linear?")
        elif int(max_rank_1pct) != true_max:
            lines.append(f"exercise 2 not yet: rank {int(max_rank_1pct)} is not the largest under 1%. Hint: "
                         "1% of report.base_params, divided by the all-linear cost of rank 1, rounded down")
        else:
            lines.append(f"exercise 2 pass: r = {true_max}. With all seven matrices even small ranks get "
                         "expensive, and the paper found W_q, W_v at rank 1-2 already competitive")
        return "\\n".join(lines)
    except Exception as err:  # a check reports; it never stops the notebook
        return f"not yet: {type(err).__name__}: {err}"


print(check_exercises())
""")

# ------------------------------------------------------------------ summary

md("""
## Summary

- **LoRA** freezes $W_0$ and learns $\\Delta W = \\frac{\\alpha}{r} B A$ with $B$ ($d \\times r$) zero and
  $A$ ($r \\times k$) random at the start. An adapter on a $d_\\text{out} \\times d_\\text{in}$ matrix trains
  $r(d_\\text{in} + d_\\text{out})$ parameters. On SmolLM2 with $W_q, W_v$ at $r = 8$, that is 460,800,
  or 0.34% of the model. The saving grows with the width and with the share of the model left alone,
  which is how GPT-3 gets to about 10,000x.
- **Step 0 is the base.** $B = 0$ makes a fresh adapter change no logit at all. Training moves only
  $A$ and $B$, and $W_0$ stays bit-for-bit the same.
- **Merge** adds $\\frac{\\alpha}{r} BA$ into $W_0$. The outputs are the same up to float rounding and
  inference runs at the base model's cost. **Unmerge** subtracts it again.
- **One base, many tasks.** An adapter file is about 2 MB next to a 538 MB base. Adapters load side by
  side and `--use` switches between them in place and exactly.
- **Rank.** The cost is linear in $r$. The benefit needs longer runs to measure. The paper found very
  low ranks enough on $W_q + W_v$ for GPT-3, so start small and sweep on your own task.

Clean up the temporary adapter folder:
""")

code("""
import shutil

shutil.rmtree(ADAPTER_DIR, ignore_errors=True)
assert not ADAPTER_DIR.exists()
""")


if __name__ == "__main__":
    LAB.write()
