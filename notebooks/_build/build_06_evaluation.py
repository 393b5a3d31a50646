"""Generate notebooks/06_evaluation.ipynb (Lab 6: evaluating LLMs), clean and without outputs."""

from pathlib import Path

from _labs import Lab

OUT = Path(__file__).resolve().parent.parent / "06_evaluation.ipynb"

LAB = Lab("lab06", OUT)
md, code = LAB.md, LAB.code


# ------------------------------------------------------------------ title and parameters

md("""
# Lab 6 · Evaluating LLMs: benchmarks, metrics, judges, arenas, contamination

Training a model is half the job. The other half is knowing whether it got better, and at what. The
lecture sorts what we check into a few kinds: **accuracy** (including hallucination), **relevance**,
**bias and toxicity**, and **diversity**. It also names the usual tools:

- **Benchmarks** with one right answer. MMLU (multiple choice across many subjects, scored as the
  fraction answered correctly), HellaSwag (pick the most plausible ending), TruthfulQA (avoid popular
  misconceptions), WinoGrande, ARC, and GSM8K (grade-school word problems).
- **Your own prompt/response pairs**, scored by a metric or by an **LLM as judge** ("score the model
  response on a scale from 0 to 100 ... respond with the number only"). In the lecture's example two
  fine-tuned models averaged 74.04 and 56.72 over 100 entries.
- **Human preference**, as in Chatbot Arena: people compare two anonymous answers, and the votes
  become Elo-style ratings with 95% intervals.
- **Leaderboards**, which collect all this. The Open LLM Leaderboard moved to a second version because
  its benchmarks were *saturated* (the top models all scored near the ceiling) and *contaminated*
  (test items had leaked into training data).

This lab runs each of these end to end with `%eval`, on SmolLM2-135M-Instruct, offline. By the end you
will be able to

- score multiple choice by log-likelihood, and explain when `acc` and `acc_norm` disagree;
- score free-form answers with exact match, token F1, ROUGE-L and final-number extraction;
- compute perplexity over long text with a sliding window;
- run an LLM judge with a cache, and name the judge biases to watch for;
- turn pairwise votes into Elo and Bradley-Terry ratings with bootstrap intervals;
- find planted contamination with n-gram overlap, and re-score on the clean subset;
- probe in-context learning with synthetic tasks whose context length you control;
- put every number in one leaderboard table.

A 135M model is a weak test-taker, so many scores will be low. That is fine: we are here to learn how
each number is made and what can go wrong with it. The notebook takes about 5 minutes on a 2-core CPU.
""")

md("""
## Parameters

Sizes for a CPU. On a GPU, drop the limits (`MC_LIMIT = None` scores all 40 questions) and raise `SYN_N`.
""")

code("""
MODEL = "smollm2"        # SmolLM2-135M-Instruct, packaged for offline use
MC_LIMIT = 16            # questions of the shipped llm-quiz to score (of 40)
SHOTS = 2                # solved examples before each question in the few-shot run
GEN_LIMIT = 2            # word problems the model solves in section 2
JUDGE_LIMIT = 3          # prompts judged in section 4 (two responses each)
SYN_LENGTHS = "4,24"     # context lengths (key-value pairs) for the synthetic task
SYN_N = 6                # prompts per context length
BOOTSTRAP = 200          # bootstrap rounds for the arena intervals
SEED = 0
""", tags=["parameters"])

md("""
## Setup

`%load_ext nbllm` registers the magics. Every `%eval` result also lands on a session leaderboard,
which we clear first so that this run starts from nothing.
""")

code("""
%load_ext nbllm
%eval leaderboard --clear
""")

code("""
import json
import math
import random
import tempfile
from pathlib import Path

import pandas as pd

import nbllm
from nbllm.evaluate import arena, contamination, generative, mc
from nbllm.evaluate.common import resolve_model

WORK = Path(tempfile.mkdtemp(prefix="nbllm-lab06-"))
""")

# ------------------------------------------------------------------ 1. multiple choice

md("""
## 1 · Multiple choice by log-likelihood

How do you ask a language model a multiple-choice question without letting it write free text? You
score each choice as a *continuation* of the question. For a prompt $x$ and a choice $c = c_1 \\dots c_m$
(its tokens), the model gives

$$\\log p(c \\mid x) = \\sum_{t=1}^{m} \\log p(c_t \\mid x, c_{<t}),$$

and the prediction is the choice with the highest value. This is how lm-evaluation-harness scores
MMLU, HellaSwag, ARC and the rest. Two variants:

- **acc** picks the highest *summed* log-likelihood. Every token adds a negative number, so long
  choices are penalised just for being long.
- **acc_norm** divides each sum by the choice's length in characters first, so a choice is judged
  by its average fit instead.

The shipped `llm-quiz` has 40 original questions on this course's topics, 4 choices each, most of them
several tokens long. The schema is MMLU's: `question`, `choices`, `answer` (an index).
""")

code("""
quiz = mc.load_mc("llm-quiz")
print(json.dumps({k: quiz[0][k] for k in ("question", "choices", "answer")}, indent=1))
""")

code("""
mc0 = %eval mc --model {MODEL} --data llm-quiz --limit {MC_LIMIT}
print(mc0)
""")

md("""
`.details` has one row per question and choice: the summed log-likelihood, the number of tokens, the
length in characters, `loglik_norm` (= loglik / length), which choice each rule picks, and which choice
is right. Both scores follow from this table alone, which we check:
""")

code("""
d = mc0.details
print(d[d.question_id == 0][["choice", "text", "loglik", "n_tokens", "length", "loglik_norm", "chosen",
                             "chosen_norm", "correct"]].round(3).to_string(index=False))

acc = d[d.chosen].correct.mean()
acc_norm = d[d.chosen_norm].correct.mean()
assert abs(acc - mc0.score["acc"]) < 1e-12 and abs(acc_norm - mc0.score["acc_norm"]) < 1e-12
assert (d.loglik_norm - d.loglik / d.length).abs().max() < 1e-9
print(f"acc {acc:.3f}, acc_norm {acc_norm:.3f} (chance: 0.25)")
""")

md("""
### Where acc and acc_norm disagree

`.explain()` lists the questions where the two rules pick different choices. Look at the lengths: the
summed score tends to pick the shortest choice, and the normalised one does not.
""")

code("""
flips = mc0.explain()
print(f"{len(flips)} of {mc0.n} questions flip")
print(flips[["by_loglik", "by_loglik_norm", "right"]].head(6).to_string(index=False))

rows = d
shorter = (rows[rows.chosen].length.mean(), rows[rows.chosen_norm].length.mean())
assert shorter[0] <= shorter[1]  # summing penalises length: acc picks shorter choices on average
print(f"mean length of the choice picked: acc {shorter[0]:.1f} chars, acc_norm {shorter[1]:.1f} chars")
""")

md("""
Normalising is not free of bias either. If the right answer tends to be the *longest* choice (a
common artefact when people write benchmarks: the true answer gets qualified, the distractors don't), a
rule that favours long choices wins without knowing anything. Check your own data for that:
""")

code("""
longest_is_gold = sum(max(range(4), key=lambda j: len(q["choices"][j])) == q["answer"] for q in quiz)
print(f"the gold answer is the longest choice in {longest_is_gold} of {len(quiz)} questions "
      f"(a length-blind rule would expect {len(quiz) / 4:.0f})")
assert longest_is_gold > len(quiz) / 4  # our quiz has this artefact too: read acc_norm with care
""")

md("""
### Few-shot prompts, computed once

Real evaluations put a few solved examples before each question (`--shots`). That makes the prompt
long, and the prompt is the same for all four choices. `%eval mc` therefore runs the prompt through the
model **once**, keeps its key/value cache, repeats it over the choices, and scores all four
continuations in one batched pass. The naive way runs prompt + choice from scratch for every choice.
Both give the same numbers. Here is one question both ways:
""")

code("""
lm, tok, _ = resolve_model(MODEL)
prompt, conts = mc.build_prompt(quiz[3], quiz, SHOTS, "qa", seed=SEED)
ctx, cont_ids = mc.encode(tok, prompt, conts)
cached, naive = mc.cached_logliks(lm, ctx, cont_ids), mc.naive_logliks(lm, ctx, cont_ids)
assert max(abs(a - b) for a, b in zip(cached, naive)) < 1e-4
print(prompt[-300:])
print(f"prompt: {len(ctx)} tokens, choices: {[len(c) for c in cont_ids]} tokens")
print(f"tokens through the model: naive {sum(len(ctx) + len(c) for c in cont_ids)}, "
      f"cached {len(ctx) + sum(len(c) - 1 for c in cont_ids)}")
""")

code("""
mc2 = %eval mc --model {MODEL} --data llm-quiz --limit {MC_LIMIT} --shots {SHOTS}
print(mc2)
assert mc2.shots == SHOTS and len(mc2.details) == 4 * MC_LIMIT
""")

md("""
`benchmarks/eval.py` times both ways on all 40 questions. With 3 shots the cached prefix is about
three times faster on a 2-core CPU.

**Hub benchmarks.** With a network, `--data mmlu` (or `hellaswag`, `truthfulqa_mc1`, `winogrande`,
`arc_challenge`, `arc_easy`) loads the real set and maps it to the same schema (WinoGrande is scored
partially, as lm-evaluation-harness does: each option fills the blank and the model scores the same
rest of the sentence after it). Offline you get one
clear error instead of a long wait:
""")

code("""
try:
    mc.load_mc("mmlu")
except nbllm.OfflineError as err:
    print("OfflineError:", str(err)[:110], "...")
""")

# ------------------------------------------------------------------ 2. generative

md("""
## 2 · Scoring free-form answers

When the model writes its answer, you need a metric that compares text with a reference:

- **exact match (em)**: equal after normalising (lowercase, no punctuation, no articles);
- **token F1**: the harmonic mean of token precision and recall, so partial answers get partial credit;
- **ROUGE-L**: an F-measure on the longest common subsequence of words, so word order counts;
- **number**: GSM8K-style. Take the final number of the output and compare it with the number after
  `####` in the reference.
""")

code("""
pairs = [("The Eiffel Tower is in Paris.", "Paris"),
         ("Paris", "paris."),
         ("in Paris, France", "Paris France")]
for pred, ref in pairs:
    print(f"{pred!r:34} vs {ref!r:16} em {generative.exact_match(pred, ref):.0f}  "
          f"f1 {generative.token_f1(pred, ref):.2f}  rougeL {generative.rouge_l(pred, ref):.2f}")
assert generative.exact_match("Paris", "paris.") == 1.0
partial = ("in Paris, France", "Paris France")
assert generative.token_f1(*partial) > generative.exact_match(*partial)  # partial credit
""")

md("""
The shipped `word-problems` set has 24 original GSM8K-style problems. Each answer ends in `#### N`.
Let the model solve a couple of them:
""")

code("""
gen = %eval gen --model {MODEL} --data word-problems --metric number --limit {GEN_LIMIT}
frame = gen.to_pandas()
for row in frame.itertuples():
    print(f"Q: {row.prompt}\\nmodel: {row.output[-160:]!r}\\n-> extracted {row.extracted}, "
          f"reference {generative.extract_number(row.reference)}, score {row.score}\\n")
assert all(r.score == float(r.extracted == generative.extract_number(r.reference)) for r in frame.itertuples())
""")

md("""
A metric is only as good as its extraction. "The answer is 18 rolls, or 18.0" scores, "eighteen" does
not. This is why GSM8K prompts ask the model to end with a fixed phrase, and why you should always look
at the outputs, not just the score.
""")

# ------------------------------------------------------------------ 3. perplexity

md("""
## 3 · Perplexity with a sliding window

Perplexity is $\\exp$ of the average negative log-likelihood per token: how surprised the model is by
a text. A model sees at most its context length at once, so a long text is scored in windows. To score
each token exactly once, every window after the first scores only its *new* tokens. The tokens it shares
with the previous window are there only as context. A smaller stride gives each token more context,
and costs more forward passes.
""")

code("""
text = (
    "Retrieval-augmented generation answers a question in two steps. First a retriever finds the passages "
    "that are most similar to the question, usually by comparing embeddings in a vector store. Then a "
    "language model reads those passages and writes an answer that cites them. The quality of the answer "
    "depends on both steps: if the retriever misses the right passage, the model cannot recover it, and if "
    "the model ignores the passages, retrieval was wasted. This is why retrieval systems are evaluated with "
    "several scores rather than one."
)
words = text.split()
shuffled = " ".join(random.Random(SEED).sample(words, len(words)))

wide = %eval ppl --model {MODEL} --data text --window 64 --stride 64
narrow = %eval ppl --model {MODEL} --data text --window 64 --stride 16
scrambled = %eval ppl --model {MODEL} --data shuffled --window 64 --stride 16
for name, res in (("stride 64", wide), ("stride 16", narrow), ("shuffled words", scrambled)):
    print(f"{name:15} ppl {res.ppl:8.2f}  tokens scored {res.n_tokens}  windows {res.summary()['windows']}")
assert narrow.n_tokens == wide.docs[0]["tokens"] - 1  # every token but the first, once
assert scrambled.ppl > 2 * narrow.ppl                 # the same words in a random order surprise the model
""")

md("""
With stride = window, each window's first token has no context at all, so it is skipped (see the token
counts). Shuffling keeps every word but destroys the order, and perplexity jumps. That is what it
measures: how predictable the *sequence* is, not which words appear in it.
""")

# ------------------------------------------------------------------ 4. judge

md("""
## 4 · An LLM as judge

For open-ended answers there is often no single reference. The lecture's recipe is to ask a strong
model to rate each response from 0 to 100, given the input and a correct output, and to "respond with
the number only". Then you average over the entries. `%eval judge` does exactly that, with any
registered model or an OpenAI-compatible endpoint (`--judge-url URL --judge MODEL`, with the key read
from an environment variable).

The shipped `judge-responses` set has prompts with a reference and two responses each: `concise-bot`
(short and correct) and `chatty-bot` (long-winded, and often wrong). Our judge is SmolLM2 itself, far
too small to judge well. Watch the mechanics, not the verdict.
""")

code("""
j1 = %eval judge --data judge-responses --judge {MODEL} --limit {JUDGE_LIMIT}
print(j1)
print(j1.to_pandas()[["model", "reply", "score", "cached"]].to_string(index=False))
""")

md("""
Three things to notice:

- A reply without a number from 0 to 100 counts as **unparsable**. It is shown and counted, and left
  out of the mean. Dropping such replies silently would make a judge look more reliable than it is.
- The mean comes with a **95% interval** (mean ± 1.96 standard errors). With a handful of entries it is
  wide: two models 10 points apart on 6 prompts are not yet distinguishable.
- Every reply is **cached on disk**, keyed by a hash of (judge, prompt). Rerun the cell and nothing is
  generated:
""")

code("""
j2 = %eval judge --data judge-responses --judge {MODEL} --limit {JUDGE_LIMIT}
assert j2.n_cached == len(j2.rows) and repr(j2) == repr(j1)
print(j2)
print(j2.by_model().round(2).to_string(index=False))
""")

md("""
**Known biases of LLM judges.** Check for these before trusting a judge:

- *Position bias*: when a judge compares two answers, it tends to favour the one shown first (or
  second). Ask twice with the order swapped and keep only consistent verdicts.
- *Verbosity bias*: longer, more confident answers get higher scores even when they are wrong. That
  is the trap `chatty-bot` sets.
- *Self-preference*: a judge tends to favour text written by itself or by a model like it.
- *Limited ability*: a judge cannot reliably grade problems it cannot solve itself (maths, code). Giving
  it the reference answer helps, which is why the lecture's prompt includes the correct output.
""")

# ------------------------------------------------------------------ 5. arena

md("""
## 5 · Arena ratings: Elo and Bradley-Terry

Chatbot Arena shows a person two anonymous answers to their own prompt. The person votes **A better**,
**B better**, **tie** or **both bad**. How do thousands of such votes become one ranking?

- **Elo** (online): start everyone at 1000. After each vote, move both ratings by $K (S - E)$, where
  $S$ is the result (1, 0 or ½) and $E = 1 / (1 + 10^{(r_b - r_a)/400})$ is the expected result.
  LMSYS used $K = 4$. The result depends on the *order* of the votes, which is arbitrary.
- **Bradley-Terry**: find the ratings that make all the observed votes most likely at once, under the
  same model $P(a \\text{ beats } b) = 1 / (1 + 10^{(r_b - r_a)/400})$. This is a logistic regression,
  it does not depend on the order, and it is what the Arena reports today.

The 95% intervals come from the bootstrap: resample the votes with replacement many times, refit, and
take the 2.5th and 97.5th percentiles. The shipped `arena-votes` file holds 600 original votes among five
made-up models.
""")

code("""
ar = %eval arena --votes arena-votes --rounds {BOOTSTRAP} --seed {SEED}
ar
""")

code("""
votes = [json.loads(line) for line in open(nbllm.evaluate.common.EVAL_SETS["arena-votes"])]
table = ar.to_pandas().set_index("model")
assert list(table.index) == ["cat-13b", "owl-7b", "fox-3b", "bee-1b", "ant-0.5b"]
assert (table.bt_low <= table.bt).all() and (table.bt <= table.bt_high).all()

reversed_votes = list(reversed(votes))
bt_fwd, bt_rev = arena.bradley_terry(votes), arena.bradley_terry(reversed_votes)
elo_fwd, elo_rev = arena.online_elo(votes), arena.online_elo(reversed_votes)
assert max(abs(bt_fwd[m] - bt_rev[m]) for m in bt_fwd) < 1e-6   # order-free
assert max(abs(elo_fwd[m] - elo_rev[m]) for m in elo_fwd) > 1    # order matters
print("same votes, reversed order:")
print(pd.DataFrame({"elo": elo_fwd, "elo reversed": elo_rev, "bt": bt_fwd, "bt reversed": bt_rev}).round(1))
""")

md("""
With $K = 4$ Elo moves slowly, and 600 votes are not enough for it to spread the ratings as far as
Bradley-Terry does. The two agree on the order here, but only Bradley-Terry gives the same answer for the
same votes every time.

**Vote yourself.** `%eval arena --widget --battles DATA --votes FILE.jsonl` opens a voting widget: the
prompt, two anonymous answers in a seeded random order, and four buttons. Each click appends a vote to
the file, which `%eval arena --votes FILE.jsonl` turns into ratings. Here the battles are the two bots'
answers from section 4. In Jupyter, click the buttons. Below, we cast three votes from code, the same
way a click does.
""")

code("""
battles = [{"prompt": r["prompt"], "responses": r["responses"]}
           for r in nbllm.evaluate.common.load_eval_records("judge-responses")]
votes_file = WORK / "my_votes.jsonl"
widget = %eval arena --widget --battles battles --votes {votes_file}
display(widget)
for _ in range(3):
    a, b = widget.order[widget.index]
    widget.vote("a" if a == "concise-bot" else "b")  # we prefer the concise, correct answer
mine = arena.ratings(str(votes_file), rounds=0)
assert mine.n_votes == 3 and mine.to_pandas().model.iloc[0] == "concise-bot"
print(widget)
""")

# ------------------------------------------------------------------ 6. contamination

md("""
## 6 · Contamination

If test items were in the training data, a high score may just be memory. The GPT-3 paper checked this
with **13-gram overlap**: lowercase the text, strip the punctuation, and flag any test item that shares
a run of 13 words with the training data. `%eval contamination` reports each item's overlapping spans,
the contamination rate, and `.clean`, the items with no overlap.

Let's plant some. We take the shipped instruction-tuning set and sneak three quiz questions into it, as
if a web scrape had picked up the benchmark:
""")

code("""
train = nbllm.data.load_records("instructions")
planted_ids = [5, 20, 34]  # questions of 9 to 11 words
leaky = train + [{"instruction": "Answer the question.", "input": quiz[i]["question"],
                  "output": quiz[i]["choices"][quiz[i]["answer"]]} for i in planted_ids]
quiz_records = [{k: q[k] for k in ("question", "choices", "answer")} for q in quiz]

clean_check = %eval contamination --train instructions --test quiz_records --n 8 --field question
leak_check = %eval contamination --train leaky --test quiz_records --n 8 --field question
print(clean_check)
print(leak_check)
found = [r["item"] for r in leak_check.rows if r["contaminated"]]
assert set(planted_ids) <= set(found) and len(leak_check.clean) == len(quiz) - len(found)
for r in leak_check.rows:
    if r["contaminated"]:
        print(f"item {r['item']}: {r['spans']}")
""")

md("""
We used 8-grams, since quiz questions are short: many have fewer than 13 words, and an item shorter
than $n$ can never be flagged (`too_short` counts them). That is the trade-off. A small $n$ catches
short leaks but also flags common phrases; a large $n$ misses short items. Once you know what leaked,
evaluate on the clean subset and report both numbers:
""")

code("""
clean_quiz = leak_check.clean
mc_clean = %eval mc --model {MODEL} --data clean_quiz --limit {MC_LIMIT}
print(mc_clean)
assert mc_clean.n == min(MC_LIMIT, len(clean_quiz))
""")

# ------------------------------------------------------------------ 7. synthetic

md("""
## 7 · Synthetic tasks: does context length matter?

The lecture's caution about new sub-quadratic architectures: evaluate them on the right problems.
Synthetic tasks have exact answers and a context length you can turn up at will:

- **mqar** (multi-query associative recall): a list of key:value pairs, then several keys to look up;
- **copy** and **palindrome**: repeat a sequence, or write it reversed;
- **state** and **permutation**: track a counter, or a row of letters, through a chain of updates.

`nbllm.evaluate.synthetic.make_task` builds the records (the context length counts *items*: pairs,
letters or operations), and `%eval synthetic` lets a model answer them and scores exact match.
""")

code("""
from nbllm.evaluate.synthetic import make_task

example = make_task("mqar", n=1, context_length=4, seed=SEED, shots=1)[0]
print(example["prompt"])
print("answer:", example["answer"])
""")

code("""
syn = %eval synthetic --task mqar --model {MODEL} --context-length {SYN_LENGTHS} --n {SYN_N} --seed {SEED}
syn
""")

code("""
by_len = syn.by_length().set_index("context_length")
short, long = [int(x) for x in SYN_LENGTHS.split(",")]
print(by_len.round(3))
assert by_len.loc[short, "item_accuracy"] >= by_len.loc[long, "item_accuracy"]
""")

md("""
With 4 pairs the lookup is easy. With 24 the model has to find the right key among many similar ones,
and a small model loses track. An architecture that claims linear cost must hold up as this
curve goes right, on tasks like these, before its perplexity on short text means much.
""")

# ------------------------------------------------------------------ 8. leaderboard

md("""
## 8 · The leaderboard

Every `%eval` result in this session is on one table: model, task, metric, value, n and a 95% interval
where one exists. A rerun replaces its row instead of adding a duplicate. Export it with `--csv` or
`--markdown`.
""")

code("""
board = %eval leaderboard --csv {WORK / "leaderboard.csv"} --markdown {WORK / "leaderboard.md"}
frame = board.to_pandas()
assert {"acc", "acc_norm", "number", "perplexity", "elo", "bt", "rate", "exact_match"} <= set(frame.metric)
assert (WORK / "leaderboard.csv").exists()
print(board.markdown()[:800])
""")

# ------------------------------------------------------------------ 9. exercises

md("""
## 9 · Exercises

Write your answers in the cell marked `# your turn`, then run the check cell below it. It prints
`pass` or `not yet:` with a hint, and never stops the notebook.

### Exercise 1: acc_norm by hand

From `mc0.details`, find which choice **acc_norm** picks for question 0 (`question_id == 0`). Store its
index (0 to 3) in `norm_pick_q0`.

### Exercise 2: what a rating gap means

Using the Bradley-Terry ratings in `ar`, what probability does the model give that `cat-13b` beats
`ant-0.5b` in one vote? Store it in `p_cat_beats_ant`. Then compare it with how often cat-13b actually
won against ant-0.5b in `votes` (ties count as half).

### Exercise 3: the smallest n that still finds a paraphrase

A rewritten question keeps only part of the original wording. Find the **largest** n-gram size `n` for
which `contamination.check(PARAPHRASE_TRAIN, [quiz[11]], n=n)` still flags the item. Store it in
`largest_n`.
""")

code("""
PARAPHRASE_TRAIN = ["Quiz prep: which source made up most of the llama 1 pre-training mix, people keep asking."]

# your turn
norm_pick_q0 = None     # exercise 1: an integer 0..3
p_cat_beats_ant = None  # exercise 2: a probability
largest_n = None        # exercise 3: an integer
""")

code("""
def check_exercises():
    try:
        lines = []
        q0 = mc0.details[mc0.details.question_id == 0]
        truth1 = int(q0.loglik_norm.values.argmax())
        if norm_pick_q0 is None:
            lines.append("exercise 1 not yet: set norm_pick_q0. Hint: divide loglik by length, take the argmax")
        elif int(norm_pick_q0) != truth1:
            lines.append("exercise 1 not yet: that is not the choice with the highest loglik / length. "
                         "Hint: length is in characters, not tokens")
        else:
            lines.append(f"exercise 1 pass: choice {truth1} ({q0.text.values[truth1]!r})")
        r = ar.ratings
        truth2 = 1 / (1 + 10 ** ((r["ant-0.5b"] - r["cat-13b"]) / 400))
        games = [v for v in votes if {v["model_a"], v["model_b"]} == {"cat-13b", "ant-0.5b"}]
        won = sum(1.0 if (v["winner"] == "a") == (v["model_a"] == "cat-13b") and v["winner"] in ("a", "b")
                  else 0.5 if v["winner"] in ("tie", "both_bad") else 0.0 for v in games) / len(games)
        if p_cat_beats_ant is None:
            lines.append("exercise 2 not yet: set p_cat_beats_ant. Hint: 1 / (1 + 10 ** ((r_b - r_a) / 400))")
        elif abs(float(p_cat_beats_ant) - truth2) > 1e-6:
            lines.append("exercise 2 not yet: use ar.ratings (Bradley-Terry) and the 400-point, base-10 scale")
        else:
            lines.append(f"exercise 2 pass: model {truth2:.3f}, observed {won:.3f} over {len(games)} votes")
        sizes = [n for n in range(1, 30) if contamination.check(PARAPHRASE_TRAIN, [quiz[11]], n=n).contaminated]
        truth3 = max(sizes)
        if largest_n is None:
            lines.append("exercise 3 not yet: set largest_n. Hint: try n = 1, 2, 3, ... and watch .contaminated")
        elif int(largest_n) != truth3:
            lines.append("exercise 3 not yet: count the longest run of words the two texts share, after "
                         "lowercasing and removing punctuation")
        else:
            lines.append(f"exercise 3 pass: n = {truth3}; at 13 this paraphrase goes unnoticed")
        return "\\n".join(lines)
    except Exception as err:  # a check reports; it never stops the notebook
        return f"not yet: {type(err).__name__}: {err}"


print(check_exercises())
""")

md("""
## Summary

- **Multiple choice** scores each choice by its log-likelihood given the question. `acc` sums over
  tokens and favours short choices. `acc_norm` divides by the length in characters and can favour long
  ones. `.explain()` shows where they part. A shared few-shot prompt needs to run only once per question.
- **Generative metrics** (exact match, F1, ROUGE-L, final number) are only as good as their
  normalisation and extraction: read the outputs.
- **Perplexity** over long text uses a sliding window that scores each token once. A smaller stride
  gives more context and lower perplexity.
- **LLM judges** need a cache, an interval, and a count of unparsable replies. Watch for position,
  verbosity and self-preference bias.
- **Arena votes** become Elo (order-dependent) or Bradley-Terry (order-free) ratings. Bootstrap them for
  intervals.
- **Contamination** checks find test text in training data. Report the clean-subset score next to the
  full one.
- **Synthetic tasks** isolate one skill and let you turn up the context length.
- **The leaderboard** puts every number in one table, with its n and interval.
""")

code("""
import shutil

shutil.rmtree(WORK, ignore_errors=True)
""")


if __name__ == "__main__":
    LAB.write()
