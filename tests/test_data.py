import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from nbllm.data import SHIPPED, load_records, parse_jsonl, split, to_examples
from nbllm.errors import DataError

RECS = [{"instruction": "Say hi", "input": "", "output": "hi"}, {"instruction": "Say yo", "input": "", "output": "yo"}]


def test_shipped_sets_are_valid():
    alpaca = load_records("instructions")
    assert len(alpaca) == 320 and len(to_examples(alpaca, "alpaca")) == 320
    lima = load_records("lima")
    assert len(lima) == 40 and all(ex["messages"][-1]["role"] == "assistant" for ex in to_examples(lima, "lima"))
    assert all(path.exists() for path in SHIPPED.values())


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_files_of_every_kind_load_the_same_records(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in RECS))
    elif suffix == ".json":
        path.write_text(json.dumps(RECS))
    elif suffix == ".csv":
        pd.DataFrame(RECS).to_csv(path, index=False)
    else:
        pd.DataFrame(RECS).to_parquet(path)
    assert load_records(str(path)) == RECS


def test_python_objects_load():
    assert load_records(RECS) == RECS
    assert load_records(pd.DataFrame(RECS)) == RECS
    from datasets import Dataset

    assert load_records(Dataset.from_list(RECS)) == RECS


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_records(str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="not a data file"):
        load_records(str(tmp_path / "x.txt"))
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_records(str(tmp_path / "bad.jsonl"))
    (tmp_path / "latin.jsonl").write_bytes('{"text": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_records(str(tmp_path / "latin.jsonl"))
    with pytest.raises(DataError, match="record 2 is a int"):
        parse_jsonl('{"a": 1}\n3')
    with pytest.raises(DataError, match="no data given"):
        load_records(None)


@pytest.mark.slow
def test_hub_dataset_while_offline_is_a_clear_error():
    code = "from nbllm.data import load_records; load_records('someone/some-dataset')"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "could not load hub dataset 'someone/some-dataset'" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "records, fmt, message",
    [
        ([{"instruction": "x"}], "alpaca", "record 1 has no output"),
        ([{"messages": [{"role": "bot", "content": "x"}]}], "chat", "role system/user/assistant"),
        ([{"messages": ["a", "b", "c"]}], "lima", None),
        (
            [{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}],
            "lima",
            "alternate user and assistant",
        ),
        ([{"messages": [{"role": "user", "content": "x"}]}], "chat", "no assistant turn"),
        ([{"text": ""}], "text", "no text"),
    ],
)
def test_format_checks(records, fmt, message):
    if message is None:
        assert to_examples(records, fmt)[0]["messages"][1] == {"role": "assistant", "content": "b"}
    else:
        with pytest.raises(DataError, match=message):
            to_examples(records, fmt)


def test_split_is_seeded_and_complete():
    items = list(range(50))
    train, val = split(items, 0.1, seed=3)
    assert len(val) == 5 and sorted(train + val) == items
    assert split(items, 0.1, seed=3) == (train, val) and split(items, 0.1, seed=4)[1] != val
    assert split(items, 0, seed=0) == (items, [])
