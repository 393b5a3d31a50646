"""Every mistake one clear line: a table of bad inputs across every magic and subcommand, run
through a real IPython shell. Each must end in one UsageError that names the problem (the
regex), leave the kernel usable and leave the variables it was given unchanged."""

import gzip
import json
import os

import pytest
from IPython.core.error import UsageError

import nbllm

LONG = "x" * 300  # longer than any file system's name limit (255 bytes)
ALPACA = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(4) for b in range(3)]


@pytest.fixture(scope="module")
def files(tmp_path_factory, ip):
    d = tmp_path_factory.mktemp("bad input")  # a space in the folder name, as Colab's Drive has
    (d / "good.jsonl").write_text("\n".join(json.dumps(r) for r in ALPACA))
    (d / "latin1.jsonl").write_bytes('{"instruction": "caf\xe9", "output": "ol\xe9"}\n'.encode("latin-1"))
    (d / "latin1.txt").write_bytes("Un caf\xe9 tr\xe8s chaud, s'il vous pla\xeet.\n".encode("latin-1") * 20)
    (d / "packed.txt").write_bytes(gzip.compress(b"plain text inside a gzip file\n" * 50))
    (d / "packed.jsonl").write_bytes(gzip.compress("\n".join(json.dumps(r) for r in ALPACA).encode()))
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "broken.json").write_text('[{"question": "x", "choices": ["a", "b"], "answer": 0}')
    (d / "empty.jsonl").write_text("")
    (d / "a file.txt").write_text("I am a regular file, not a folder.\n")
    (d / "no weights").mkdir()
    (d / "no weights" / "adapter_config.json").write_text("{}")
    (d / "notes").mkdir()
    (d / "notes" / "lora.md").write_text("LoRA adds two small matrices to each frozen weight.\n\n" * 4)
    ip.user_ns.update(bi_int=3, bi_none=None, bi_text="just a string")
    import pandas as pd

    ip.user_ns["bi_frame"] = pd.DataFrame({"a": [1, 2]})
    ip.user_ns["bi_few_votes"] = [{"model_a": "x", "model_b": "y", "winner": "model_a"}]
    ip.user_ns["bi_classifier"] = nbllm.sft(
        [{"text": f"good {i}" if i % 2 else f"bad {i}", "label": "pos" if i % 2 else "neg"} for i in range(12)],
        model="tiny-llama",
        format="classify",
        max_steps=1,
        batch_size=4,
        progress="none",
    )
    ip.run_cell("%lora bi_lora --base tiny-llama --r 2")
    import shutil

    nbllm.sft(
        str(d / "good.jsonl"),
        model="tiny-llama",
        max_steps=1,
        batch_size=2,
        samples=0,
        progress="none",
        save=str(d / "ck"),
    )
    damage = {
        "ck-no-optimizer": lambda c: (c / "optimizer.pt").unlink(),
        "ck-empty-state": lambda c: (c / "trainer_state.json").write_text(""),
        "ck-cut-state": lambda c: (c / "trainer_state.json").write_text((c / "trainer_state.json").read_text()[:40]),
        "ck-bad-weights": lambda c: (c / "adapter" / "adapter_model.safetensors").write_bytes(b"\xff" * 64),
        "ck-no-rng": lambda c: (c / "rng.pt").unlink(),
        "ck-cut-optimizer": lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:99]),
    }
    for name, spoil in damage.items():
        shutil.copytree(d / "ck", d / name)
        spoil(d / name)
    ip.run_cell(f"%rag index '{d / 'notes'}' --collection bi-notes --chunk-size 64 --overlap 0")
    LISTING[:] = sorted(os.listdir(d))
    return d


def cases():
    f = "{d}"  # replaced by the fixture's folder (which has a space in its name)
    sft = "%sft --model tiny-llama --max-steps 1 --batch-size 2 --samples 0 --progress none"
    data = f"--data '{f}/good.jsonl'"
    rows = [
        # ---------------------------------------------------------------- %%sft: files
        (f"{sft} --data '{f}/missing.jsonl'", "not found"),
        (f"{sft} --data '{f}/latin1.jsonl'", "not UTF-8"),
        (f"{sft} --data '{f}/packed.jsonl'", "gzip"),
        (f"{sft} --data '{f}/deep.json'", "nested too deeply"),
        (f"{sft} --data '{f}/broken.json'", "invalid JSON"),
        (f"{sft} --data '{f}/empty.jsonl'", "empty"),
        (f"{sft} --data '{f}/notes'", "is a folder"),
        (f"{sft} --data nosuch_var", "'nosuch_var' not found; give an existing"),
        (f"{sft} --data bi_int", "int"),
        (f'{sft} --data "{f}/missing dir/train.jsonl"', "missing dir/train.jsonl"),
        # ---------------------------------------------------------------- %%sft: numbers and choices
        (f"{sft} {data} --lr nan", "finite"),
        (f"{sft} {data} --lr inf", "finite"),
        (f"{sft} {data} --lr -1", "lr"),
        (f"{sft} {data} --weight-decay nan", "finite"),
        (f"{sft} {data} --epochs nan", "epochs"),
        (f"{sft} {data} --epochs 0", "epochs"),
        (f"{sft} {data} --batch-size 0", "batch_size"),
        (f"{sft} {data} --max-length 0", "max_length"),
        (f"{sft} {data} --grad-accum 0", "grad_accum"),
        (f"{sft} {data} --val-fraction 1.5", "val_fraction"),
        (f"{sft} {data} --warmup-ratio 2", "warmup_ratio"),
        (f"{sft} {data} --max-grad-norm -1", "max_grad_norm"),
        (f"{sft} {data} --lora-r 0 --method lora", "lora_r"),
        (f"{sft} {data} --lora-dropout 1.5 --method lora", "lora_dropout"),
        (f"{sft} {data} --format bogus", "invalid choice"),
        (f"{sft} {data} --method bogus", "invalid choice"),
        (f"{sft} {data} --precision fp8", "invalid choice"),
        (f"{sft} {data} --schedule bogus", "invalid choice"),
        (f"{sft} {data} --nope", "unrecognized arguments: --nope"),
        (f"{sft} {data} --batch-size two", "invalid int value"),
        (f"{sft} {data} --method lora --lora-targets nosuch_proj", "nosuch_proj"),
        # ---------------------------------------------------------------- %%sft: devices
        (f"{sft} {data} --device tpu", "device 'tpu'"),
        (f"{sft} {data} --device cuda", "CUDA"),
        (f"{sft} {data} --device cuda:3", "CUDA"),
        (f"{sft} {data} --device mps", "MPS"),
        # ---------------------------------------------------------------- %%sft: models of the wrong kind
        (f"{sft} {data} --model nosuch", "unknown model 'nosuch'"),
        (f"{sft} {data} --model minilm --format alpaca", "encoder"),
        (f"{sft} {data} --model bi_int", "int"),
        (f"{sft} {data} --model bi_none", "None"),
        (f"{sft} {data} --model bi_frame", "holds a DataFrame, not a model result"),
        (f"{sft} {data} --model bi_classifier --format alpaca", "classifier"),
        (f"{sft} {data} --model '{f}/notes'", "holds no model"),
        # ---------------------------------------------------------------- %%sft: destinations
        (f"{sft} {data} --save '{f}/a file.txt'", "is an existing file"),
        (f"{sft} {data} --save '{f}/a file.txt/ckpt'", "a file.txt', which is a file"),
        (f"{sft} {data} --save '{f}/{LONG}'", "too long"),
        (f"{sft} {data} --resume '{f}/no such checkpoint'", "not an nbllm checkpoint"),
        (f"{sft} {data} --resume '{f}/a file.txt'", "checkpoint"),
        (f"{sft} {data} --resume '{f}/notes'", "checkpoint"),
        (f"{sft} {data} --save-every 1", "--save"),
        (
            f"{sft} {data} --resume '{f}/ck-no-optimizer'",
            "ck-no-optimizer' is incomplete or damaged: optimizer.pt is missing",
        ),
        (f"{sft} {data} --resume '{f}/ck-empty-state'", "trainer_state.json cannot be read"),
        (f"{sft} {data} --resume '{f}/ck-cut-state'", "trainer_state.json cannot be read"),
        (f"{sft} {data} --resume '{f}/ck-bad-weights'", "adapter/adapter_model.safetensors cannot be read"),
        (f"{sft} {data} --resume '{f}/ck-no-rng'", "rng.pt is missing"),
        (f"{sft} {data} --resume '{f}/ck-cut-optimizer'", "optimizer.pt cannot be read"),
        (f"{sft} {data} --out 1x", "not a valid variable name"),
        # ---------------------------------------------------------------- %lora
        ("%lora", "required: var"),
        ("%lora nosuch_var --inspect", "nosuch_var"),
        ("%lora bi_int --inspect", "int"),
        ("%lora bi_frame --r 4", "DataFrame"),
        ("%lora bi_new --base nosuch", "unknown model 'nosuch'"),
        ("%lora bi_new --base minilm", "match no module of this model; its linear modules are dense"),
        ("%lora bi_lora --r 0", "r must be"),
        ("%lora bi_lora --r -2", "r must be"),
        ("%lora bi_lora --alpha nan", "finite"),
        ("%lora bi_lora --dropout 1.5", "dropout"),
        ("%lora bi_lora --targets nosuch_proj --name other", "nosuch_proj"),
        ("%lora bi_lora --name a/b", "name 'a/b'"),
        ("%lora bi_lora --name '..'", "name"),
        ("%lora bi_lora --use nosuch", "no adapter named 'nosuch'"),
        ("%lora bi_lora --load '{d}/missing adapter'", "missing adapter"),
        ("%lora bi_lora --load '{d}/no weights'", "adapter_model"),
        ("%lora bi_lora --load '{d}/a file.txt'", "folder"),
        ("%lora bi_lora --save '{d}/a file.txt'", "is an existing file"),
        ("%lora bi_lora --save '{d}/a file.txt/adapter'", "a file.txt', which is a file"),
        (f"%lora bi_lora --save '{{d}}/{LONG}'", "too long"),
        ("%lora bi_lora --sweep 1,x", "sweep"),
        ("%lora bi_lora --sweep 0,2", "sweep"),
        ("%lora bi_lora --merge --unmerge", "one action per line"),
        ("%lora bi_lora --inspect --nope", "unrecognized arguments: --nope"),
        # ---------------------------------------------------------------- %rag index
        ("%rag index", "one PATH"),
        ("%rag index '{d}/missing.txt'", "no such file or folder"),
        ("%rag index '{d}/latin1.txt' --collection bi-latin", "not UTF-8"),
        ("%rag index '{d}/packed.txt' --collection bi-packed", "gzip-compressed"),
        ("%rag index '{d}/empty.jsonl' --collection bi-empty", "empty"),
        ("%rag index bi_int --collection bi-int", "int"),
        ("%rag index bi_none --collection bi-none", "'bi_none' is None"),
        ("%rag index '{d}/notes' --chunk-size 0", "chunk"),
        ("%rag index '{d}/notes' --chunk-size 32 --overlap 40", "overlap"),
        ("%rag index '{d}/notes' --distance manhattan", "invalid choice"),
        ("%rag index '{d}/notes' --embedder nosuch", "unknown embedder 'nosuch'"),
        ("%rag index '{d}/notes' --embedder tiny-llama", "not an encoder|causal language model"),
        ("%rag index '{d}/notes' --collection 'a b'", "collection name"),
        ("%rag index '{d}/notes' --collection x", "collection name"),
        ("%rag index '{d}/notes' --collection bi-notes --distance ip", "distance"),
        ("%rag index '{d}/notes' --persist '{d}/a file.txt'", "is an existing file"),
        ("%rag index '{d}/notes' --persist '{d}/a file.txt/db'", "a file.txt', which is a file"),
        (f"%rag index '{{d}}/notes' --persist '{{d}}/{LONG}'", "too long"),
        ("%rag index '{d}/notes' --server http://127.0.0.1:99999", "port"),
        ("%rag index '{d}/notes' --server http://127.0.0.1:abc", "port"),
        ("%rag index '{d}/notes' --server ftp://127.0.0.1:8000", "serves http or https, not ftp"),
        ("%rag index '{d}/notes' --server localhost:8000x", "port '8000x' is not a number"),
        ("%rag index '{d}/notes' --k 3", "--k does not apply"),
        # ---------------------------------------------------------------- %%rag / %rag ask
        ("%%rag --collection bi-notes --no-generate\n   ", "question"),
        ("%%rag --collection nosuch-collection --no-generate\nWhat is LoRA?", "no collection 'nosuch-collection'"),
        ("%%rag --collection bi-notes --no-generate --k 0\nWhat is LoRA?", "k"),
        ("%%rag --collection bi-notes --no-generate --k -3\nWhat is LoRA?", "k"),
        ("%%rag --collection bi-notes --no-generate --where 'not json'\nWhat is LoRA?", "--where"),
        ('%%rag --collection bi-notes --no-generate --where \'{{"source": {{"$regex": "x"}}}}\'\nLoRA?', r"\$regex"),
        ("%%rag --collection bi-notes --no-generate --where '[1, 2]'\nWhat is LoRA?", "--where"),
        ("%%rag --collection bi-notes --model minilm\nWhat is LoRA?", "encoder"),
        ("%%rag --collection bi-notes --model bi_int\nWhat is LoRA?", "int"),
        ("%%rag --collection bi-notes --model bi_classifier\nWhat is LoRA?", "classifier"),
        (
            "%%rag --collection bi-notes --no-generate --reranker nosuch\nWhat is LoRA?",
            "only takes effect with --rerank",
        ),
        ("%%rag --collection bi-notes --no-generate --chunk-size 3\nWhat is LoRA?", "does not apply"),
        ("%rag ask", "no question: .*%rag ask QUESTION"),
        ("%rag", "question"),
        ("%rag explore --collection bi-notes --k 0", "k"),
        ("%rag explore --collection bi-notes --k 100000", "outside the explorer's slider"),
        ("%rag drop nosuch-collection", "no collection 'nosuch-collection'"),
        ("%rag list --persist '{d}/a file.txt'", "is an existing file"),
        # ---------------------------------------------------------------- %eval
        ("%eval", "subcommand"),
        ("%eval bogus", "subcommand"),
        ("%eval mc --model nosuch", "unknown model 'nosuch'"),
        ("%eval mc --model minilm", "encoder"),
        ("%eval mc --model bi_int", "int"),
        ("%eval mc --model bi_frame", "DataFrame"),
        ("%eval mc --model bi_classifier", "classifier"),
        ("%eval mc --model tiny-llama --data nosuch_var", "not a file, a variable or a shipped"),
        ("%eval mc --model tiny-llama --data '{d}/broken.json'", "invalid JSON"),
        ("%eval mc --model tiny-llama --data '{d}/deep.json'", "nested too deeply"),
        ("%eval mc --model tiny-llama --data '{d}/latin1.jsonl'", "not UTF-8"),
        ("%eval mc --model tiny-llama --data '{d}/empty.jsonl'", "empty"),
        ("%eval mc --model tiny-llama --data '{d}/good.jsonl'", "record 1 has no 'question'"),
        ("%eval mc --model tiny-llama --shots -1", "shots"),
        ("%eval mc --model tiny-llama --limit 0", "limit"),
        ("%eval mc --model tiny-llama --batch-size 0", "batch"),
        ("%eval mc --model tiny-llama --device tpu", "unrecognized arguments|device"),
        ("%eval gen --model tiny-llama --metric bogus", "invalid choice"),
        ("%eval gen --model minilm", "encoder"),
        ("%eval gen --model tiny-llama --template fancy", "invalid choice"),
        ("%eval gen --model tiny-llama --data '{d}/packed.jsonl'", "gzip"),
        ("%eval ppl --model tiny-llama --data nosuch_var", "not a file, a variable"),
        ("%eval ppl --model tiny-llama --data '{d}/latin1.txt'", "not UTF-8"),
        ("%eval ppl --model tiny-llama --data '{d}/packed.txt'", "gzip"),
        ("%eval ppl --model tiny-llama --data '{d}/notes'", "folder"),
        ("%eval ppl --model minilm --data bi_text", "encoder"),
        ("%eval ppl --model tiny-llama --data bi_text --stride 0", "stride"),
        ("%eval ppl --model tiny-llama --data bi_int", "int"),
        ("%eval judge --data nosuch_var", "not a file, a variable"),
        ("%eval judge --data judge-responses --judge minilm", "encoder"),
        ("%eval judge --data '{d}/broken.json'", "invalid JSON"),
        ("%eval triad --rag nosuch_var", "nosuch_var"),
        ("%eval triad --rag bi_int", "int"),
        ("%eval arena --votes nosuch_var", "not a file, a variable"),
        ("%eval arena --votes bi_few_votes", "too few"),
        ("%eval arena --votes '{d}/broken.json'", "invalid JSON"),
        ("%eval arena --votes '{d}/good.jsonl'", "needs model_a and model_b"),
        ("%eval contamination --train nosuch_var --test bi_text", "not a file, a variable"),
        ("%eval contamination --train bi_text --test bi_text --n 0", "n"),
        ("%eval synthetic --model tiny-llama --task bogus", "bogus"),
        ("%eval synthetic --model tiny-llama --context-length x", "context-length"),
        ("%eval synthetic --model tiny-llama --n 0", "n"),
        ("%eval synthetic --model minilm", "encoder"),
        ("%eval leaderboard --csv '{d}/a file.txt/board.csv'", "a file.txt', which is a file"),
        ("%eval leaderboard --markdown '{d}/notes'", "is a folder"),
        (f"%eval leaderboard --csv '{{d}}/{LONG}.csv'", "too long"),
        ("%eval leaderboard --task nosuch-task --csv '{d}/board.csv'", "no results"),
        # ---------------------------------------------------------------- %%tokenize, %config
        ("%%tokenize --model nosuch\nx", "unknown model 'nosuch'"),
        ("%%tokenize -m tiny-llama --max-length 0\nx", "max_length"),
        ("%%tokenize -m tiny-llama --template bogus\nx", "invalid choice"),
        ("%%tokenize -m minilm --template chat\nx", "chat template|encoder"),
        ('%%tokenize -m tiny-llama\n{"instruction": "x",', "not valid JSON"),
        ("%%tokenize -m bi_int\nx", "int"),
    ]
    return rows


CASES = cases()
LISTING = []


def test_the_table_is_large_enough():
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize("cell, message", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_one_usage_error(ip, files, cell, message):
    before = {k: ip.user_ns[k] for k in ("bi_int", "bi_none", "bi_frame", "bi_classifier", "bi_lora")}
    cell = cell.replace("{d}", str(files)).replace("{{", "{").replace("}}", "}")
    with pytest.raises(UsageError, match=message) as info:
        ip.run_cell(cell)
    assert "\n" not in str(info.value).strip()
    assert "Traceback" not in str(info.value)
    assert ip.run_cell("1 + 1").result == 2  # the kernel is usable
    assert all(ip.user_ns[k] is v for k, v in before.items())  # nothing it had was replaced
    assert sorted(os.listdir(files)) == LISTING  # no half-written file or folder left behind


def test_a_one_line_question_ending_in_a_question_mark_reaches_rag(ip, files):
    # IPython reads a trailing ? as a help request; nbllm's input transformer hands the line to %rag
    res = ip.run_cell("%rag --collection bi-notes --no-generate What is LoRA?").result
    assert res.question == "What is LoRA?" and len(res.hits) == 1
    res = ip.run_cell("%rag ask What does LoRA add? --collection bi-notes --no-generate --k 1").result
    assert res.question == "What does LoRA add?"
    assert ip.run_cell("x = 3\nx?").success  # help requests elsewhere are IPython's as before


def test_leaderboard_markdown_escapes_model_names(ip, tmp_path):
    from nbllm.evaluate import leaderboard, perplexity

    perplexity.evaluate("tiny-llama", "a short text to score", name="<script>alert(1)</script>", progress=False)
    path = tmp_path / "board.md"
    ip.run_cell(f"%eval leaderboard --markdown '{path}'")
    text = path.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in leaderboard.leaderboard()._repr_html_()
