"""Magic flags are generated from the config dataclasses: each option is declared once."""

import dataclasses
import inspect
import json
import logging
import math
import re
import types
import typing
from pathlib import Path

import pytest
from IPython.core.error import UsageError

import nbllm
from nbllm.config import SFT_FORMATS, LoraOptions, LoraSweepOptions, RunOptions, SFTConfig, TokenizeConfig
from nbllm.errors import ConfigError
from nbllm.evaluate import config as E
from nbllm.magics import NbllmMagics
from nbllm.magics._flags import finite_float, given
from nbllm.magics.eval import ROUTES
from nbllm.retrieval.config import ExploreOptions, IndexOptions, Location, QueryOptions

RECS = [{"instruction": f"Say {i}", "output": str(i)} for i in range(8)]

# magic -> (its options classes, fields given by a hand-written flag instead)
MAGICS = {
    NbllmMagics.sft_magic: ((SFTConfig, RunOptions), {"model", "data"}),
    NbllmMagics.tokenize_magic: ((TokenizeConfig,), {"model"}),
    NbllmMagics.lora_magic: ((LoraOptions, LoraSweepOptions), set()),
    NbllmMagics.rag_magic: ((QueryOptions, IndexOptions, ExploreOptions, Location), set()),
    ROUTES["mc"]: ((E.MCOptions,), set()),
    ROUTES["gen"]: ((E.GenOptions,), set()),
    ROUTES["ppl"]: ((E.PerplexityOptions,), set()),
    ROUTES["synthetic"]: ((E.SyntheticOptions,), set()),
    ROUTES["judge"]: ((E.JudgeOptions,), set()),
    ROUTES["triad"]: ((E.TriadOptions,), set()),
    ROUTES["arena"]: ((E.ArenaOptions,), set()),
    ROUTES["contamination"]: ((E.ContaminationOptions,), set()),
    ROUTES["leaderboard"]: ((E.LeaderboardOptions,), set()),
    ROUTES["diversity"]: ((E.DiversityOptions,), set()),
    ROUTES["bias"]: ((E.BiasOptions,), set()),
    ROUTES["toxicity"]: ((E.ToxicityOptions,), set()),
}
CASES = [(magic, cls, hand) for magic, (classes, hand) in MAGICS.items() for cls in classes]
IDS = [f"{magic.parser.prog}-{cls.__name__}" for magic, cls, _ in CASES]

# every flag each magic had when its flags were hand-written: they keep working
OLD_FLAGS = {
    NbllmMagics.sft_magic: "--model -m --data -d --format -f --method --beta --virtual-tokens --epochs --max-steps "
    "--lr --warmup-ratio --schedule --weight-decay --batch-size --grad-accum --max-length --seed --val-fraction "
    "--eval-every --train-on-prompt --no-packing --grad-checkpointing --lora-r --lora-alpha --lora-targets "
    "--precision --compile --attention --device --samples --save --save-every --resume --progress --out -o",
    NbllmMagics.lora_magic: "--base --r --alpha --dropout --targets --name --inspect --merge --unmerge --save --load "
    "--use --sweep --data --max-steps --batch-size --lr --seed --out -o",
    NbllmMagics.rag_magic: "--collection -c --k -k --model -m --hybrid --rerank --reranker --exact --no-generate "
    "--where --max-new-tokens --chunk-size --overlap --unit --embedder --distance --text-field --persist --server "
    "--out -o",
    NbllmMagics.tokenize_magic: "--model -m --template -t --max-length --train-on-prompt --out -o",
    ROUTES["mc"]: "--model -m --data -d --shots --template --limit --seed --naive --batch-size --out -o",
    ROUTES["gen"]: "--model -m --data -d --metric --max-new-tokens --template --limit --out -o",
    ROUTES["ppl"]: "--model -m --data -d --window --stride --limit --out -o",
    ROUTES["synthetic"]: "--task --model -m --context-length --n --shots --queries --seed --out -o",
    ROUTES["judge"]: "--data -d --judge -j --judge-url --api-key-env --limit --no-cache --out -o",
    ROUTES["triad"]: "--rag --judge -j --judge-url --api-key-env --threshold --out -o",
    ROUTES["arena"]: "--votes -v --models --k --rounds --seed --widget --battles --out -o",
    ROUTES["contamination"]: "--train --test --n --field --train-field --out -o",
    ROUTES["leaderboard"]: "--csv --markdown --json --task --clear --out -o",
}


def _actions(magic):
    return {a.dest: a for a in magic.parser._actions if a.option_strings}


def _bare(tp):
    """X | None -> X."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


@pytest.mark.parametrize("magic, cls, hand_written", CASES, ids=IDS)
def test_every_field_is_a_flag_of_its_kind(magic, cls, hand_written):
    actions, hints = _actions(magic), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        assert f.name in actions, f"{cls.__name__}.{f.name} has no flag in %{magic.parser.prog}"
        if f.name in hand_written:
            continue
        action, tp = actions[f.name], _bare(hints[f.name])
        kebab = "--" + ("no-" if f.default is True else "") + f.name.replace("_", "-")
        assert kebab in action.option_strings
        assert action.default is None  # only the flags given reach the config
        wanted = f.metadata.get("no_help", f.metadata["help"]) if f.default is True else f.metadata["help"]
        assert wanted and wanted.replace("%", "%%") in action.help
        if tp is bool:
            assert action.nargs == 0 and action.const is (f.default is not True)
        elif typing.get_origin(tp) is typing.Literal:
            assert action.choices == list(typing.get_args(tp))
            for choice in action.choices:  # the help names every choice
                assert re.search(rf"(^|[ (:]){re.escape(choice)}([ ),;]|$)", f.metadata["help"]), choice
        elif tp is float:
            assert action.type is finite_float
        elif tp is int:
            assert action.type is int
        if f.default is dataclasses.MISSING:
            assert action.required
        elif f.default is not None and not isinstance(f.default, bool):
            assert f"(default: {f.default})" in action.help or "default" in f.metadata["help"]


@pytest.mark.parametrize("magic", list(OLD_FLAGS), ids=lambda m: m.parser.prog)
def test_the_hand_written_flag_names_all_still_exist(magic):
    names = {o for a in magic.parser._actions for o in a.option_strings}
    assert set(OLD_FLAGS[magic].split()) <= names


def test_help_lists_the_generated_flags():
    doc = NbllmMagics.sft_magic.__doc__
    for flag in (
        "--no-packing",
        "--lr F",
        "--lora-dropout",
        "--method",
        "prompt-tuning",
        "(default: 0.05)",
        "--progress",
        "live loss curve",
    ):
        assert flag in doc
    assert all(name in SFTConfig.__dataclass_fields__["format"].metadata["help"] for name in SFT_FORMATS)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("%sft --data recs --nope", "unrecognized arguments: --nope"),
        ("%sft --data recs --lr nan", "argument --lr: 'nan' is not a finite number"),
        ("%sft --data recs --epochs inf", "argument --epochs: 'inf' is not a finite number"),
        ("%sft --data recs --lr fast", "argument --lr: 'fast' is not a number"),
        ("%sft --data recs --method best", "argument --method: invalid choice: 'best'"),
        ("%sft --data recs --max-steps 2.5", "argument --max-steps: invalid int value"),
        ("%lora m --dropout nan", "argument --dropout: 'nan' is not a finite number"),
        ("%eval arena --k=-inf", "argument --k: '-inf' is not a finite number"),
        ("%rag index docs --unit words", "argument --unit: invalid choice"),
        ("%eval ppl --model tiny-llama", "the following arguments are required: --data"),
    ],
)
def test_bad_flags_are_one_usage_error_line(ip, cell, message):
    ip.user_ns["recs"] = RECS
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        ip.run_cell(cell)
    assert "\n" not in str(err.value)


def test_configs_refuse_non_finite_numbers():
    for bad in (dict(lr=math.nan), dict(epochs=math.inf), dict(warmup_ratio=math.nan), dict(beta=-math.inf)):
        with pytest.raises(ConfigError, match="must be a finite number"):
            SFTConfig(**bad)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        SFTConfig(lr=0.0)
    for cls, bad in (
        (LoraOptions, dict(dropout=math.nan)),
        (E.ArenaOptions, dict(k=math.inf)),
        (E.TriadOptions, dict(threshold=math.nan)),
        (LoraSweepOptions, dict(lr=math.inf)),
    ):
        with pytest.raises(ConfigError, match="must be a finite number"):
            cls(**bad)
    with pytest.raises(ConfigError, match="progress='fancy' is not valid"):
        RunOptions(progress="fancy")


def test_only_the_given_flags_reach_the_config(ip, monkeypatch):
    from nbllm.train import run

    calls = []
    monkeypatch.setattr(run, "sft", lambda data, **kw: calls.append((data, kw)))
    ip.user_ns["recs"] = RECS
    ip.run_cell("%sft -d recs -m tiny-llama --lr 0.1 --no-packing --method full -f alpaca --compile --samples 0")
    data, kw = calls[-1]
    assert data is RECS and kw.pop("model") == "tiny-llama"
    assert callable(kw.pop("progress"))  # auto: a factory of the notebook widget (text outside a kernel)
    assert kw == {
        "samples": 0,
        "save": None,
        "save_every": None,
        "resume": None,
        "lr": 0.1,
        "packing": False,
        "method": "full",
        "format": "alpaca",
        "compile": True,
    }
    ip.run_cell("%sft --resume ck --max-steps 3")  # resuming: the checkpoint's model and config, plus --max-steps
    data, kw = calls[-1]
    assert data is None and kw["model"] is None and kw["resume"] == "ck" and kw["max_steps"] == 3
    assert set(kw) == {"model", "max_steps", *RunOptions.__dataclass_fields__}
    args = NbllmMagics.sft_magic.parser.parse_argstring("--lr 1e-3 --no-packing --grad-checkpointing")
    assert given(args, SFTConfig) == {"lr": 1e-3, "packing": False, "grad_checkpointing": True}


def test_checkpoint_configs_written_before_still_load():
    old = (
        '{"attention": "auto", "batch_size": 4, "beta": 0.1, "compile": false, "data": "instructions", '
        '"device": null, "epochs": 1.0, "eval_every": null, "format": "alpaca", "grad_accum": 1, '
        '"grad_checkpointing": false, "lora_alpha": 16.0, "lora_dropout": 0.05, "lora_r": 8, '
        '"lora_targets": "q_proj,v_proj", "lr": 0.0002, "max_grad_norm": 1.0, "max_length": 512, '
        '"max_steps": 20, "method": "lora", "model": "smollm2", "packing": true, "precision": "auto", '
        '"schedule": "linear", "seed": 0, "train_on_prompt": false, "val_fraction": 0.1, '
        '"virtual_tokens": 20, "warmup_ratio": 0.05, "weight_decay": 0.0}'
    )
    cfg = SFTConfig.from_json(old)
    assert cfg.max_steps == 20 and cfg.batch_size == 4 and SFTConfig.from_json(cfg.to_json()) == cfg


def test_script_signature_is_the_dataclass_fields():
    sig = inspect.signature(nbllm.sft)
    fields = [f for cls in (RunOptions, SFTConfig) for f in dataclasses.fields(cls) if f.name not in ("model", "data")]
    assert set(sig.parameters) == {"data", "model", "tokenizer", "stop_when", "callbacks"} | {f.name for f in fields}
    assert len(sig.parameters) == 5 + len(fields)
    assert list(sig.parameters)[0] == "data"
    for f in fields:
        p = sig.parameters[f.name]
        assert p.kind is p.KEYWORD_ONLY and p.default == f.default
        assert f"{f.name}={f.default!r}:" in nbllm.sft.__doc__
    assert "NBLLM_PROGRESS" in nbllm.sft.__doc__ and "prompt-tuning" in nbllm.sft.__doc__


@pytest.fixture
def session_defaults(ip):
    magics = ip.magics_manager.registry["NbllmMagics"]
    yield magics
    magics.progress, magics.default_model = "auto", None


def test_config_sets_session_defaults(ip, session_defaults, monkeypatch):
    from nbllm.testing import register_tiny_model
    from nbllm.train import run
    from nbllm.train.callbacks import TextProgress

    calls = []
    monkeypatch.setattr(run, "sft", lambda data, **kw: calls.append(kw))
    register_tiny_model("tiny-default", seed=3)
    ip.user_ns["recs"] = RECS
    ip.run_cell('%config NbllmMagics.progress = "text"')
    ip.run_cell('%config NbllmMagics.default_model = "tiny-default"')
    assert session_defaults.progress == "text" and session_defaults.default_model == "tiny-default"
    ip.run_cell("%sft --data recs")
    assert isinstance(calls[-1]["progress"]("title"), TextProgress) and calls[-1]["model"] == "tiny-default"
    ip.run_cell("%sft --data recs --progress none -m tiny-llama")  # a flag beats the session default
    assert calls[-1]["progress"] == "none" and calls[-1]["model"] == "tiny-llama"
    assert ip.run_cell("%%tokenize\nabc").result.model == "tiny-default"


@pytest.mark.parametrize(
    "line, message",
    [
        (
            'NbllmMagics.progress = "fancy"',
            "The 'progress' trait of a NbllmMagics instance expected any of "
            "['auto', 'widget', 'text', 'none'], not the str 'fancy'.",
        ),
        ("NbllmMagics.progress = 3", "The 'progress' trait of a NbllmMagics instance expected any of"),
        (
            "NbllmMagics.default_model = 3",
            "The 'default_model' trait of a NbllmMagics instance expected a unicode string, not the int 3.",
        ),
        ('NbllmMagics.default_model = " "', "NbllmMagics.default_model must name a model"),
    ],
)
def test_a_wrong_session_default_is_one_error_line(ip, session_defaults, caplog, line, message):
    with caplog.at_level(logging.ERROR):
        ip.run_cell(f"%config {line}")
    assert len(caplog.records) == 1
    text = caplog.records[0].getMessage()
    assert text.startswith(message) and "\n" not in text
    assert session_defaults.progress == "auto" and session_defaults.default_model is None  # left as it was


# ---------------------------------------------------------------- the labs' magic lines still parse

MAGIC_LINE = re.compile(r"^\s*(?:\w+ = )?(%%?)(sft|lora|rag|eval|tokenize)\b(.*)$")


def _lab_lines():
    for path in sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.md")):
        for line in path.read_text().splitlines():
            m = MAGIC_LINE.match(line)
            rest = re.sub(r"\{[^{}]*\}", "1", m.group(3)).strip() if m else ""
            if m and "`" not in line and '"' not in rest:  # not a mention in markdown or in a string
                yield path.name, m.group(2), rest


LAB_LINES = list(_lab_lines())


def test_the_labs_use_many_magic_lines():
    assert len(LAB_LINES) > 40 and {m for _, m, _ in LAB_LINES} == {"sft", "lora", "rag", "eval", "tokenize"}


@pytest.mark.parametrize("name, magic, rest", LAB_LINES, ids=[f"{n}:{m} {r}"[:80] for n, m, r in LAB_LINES])
def test_every_lab_magic_line_parses(name, magic, rest):
    from nbllm.magics.rag import ROUTES as RAG_COMMANDS, command_options

    if magic == "eval":
        sub, _, rest = rest.partition(" ")
        func = ROUTES[sub]
    else:
        func = getattr(NbllmMagics, f"{magic}_magic")
    args = func.parser.parse_argstring(rest)
    if magic == "rag":  # and every flag applies to its command
        command_options(args, args.words[0] if args.words and args.words[0] in RAG_COMMANDS else "ask")


@pytest.mark.parametrize("form", ['--data "{p}"', "--data '{p}'", '--data="{p}"', "-d '{p}'"])
@pytest.mark.slow
def test_a_quoted_path_with_spaces_is_one_value(ip, tmp_path, form):
    folder = tmp_path / "My Drive"  # Colab's /content/drive/My Drive/...
    folder.mkdir(exist_ok=True)
    path = folder / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECS[:4]))
    args = NbllmMagics.sft_magic.parser.parse_argstring(form.format(p=path) + " --lr 0.1")
    assert args.data == str(path) and args.lr == 0.1
    res = ip.run_cell(
        f"%sft -m tiny-llama {form.format(p=path)} --max-steps 1 --batch-size 2 --samples 0 --progress none"
    ).result
    assert res.stats["n_train"] + res.stats["n_val"] == 4
