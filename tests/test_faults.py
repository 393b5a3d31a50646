"""Faults: a process killed with SIGKILL while it saves a checkpoint or writes a persistent
collection, and Ctrl-C during training. What was saved before stays intact and loadable,
--resume continues exactly, and re-running the index completes it."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import nbllm

pytestmark = pytest.mark.slow  # each case starts Python processes that import torch

RECORDS = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(5) for b in range(4)]
RUN = dict(model="tiny-llama", max_steps=8, batch_size=2, samples=0, progress="none", seed=3)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", "import nbllm, json, sys\n" + textwrap.dedent(body)]


def _wait_for(path, proc, timeout=600):
    start = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < timeout
        time.sleep(0.005)


def _losses(result):
    return [round(x, 6) for x in result.history.loss.tolist()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS))
    return path


@pytest.fixture(scope="module")
def reference(data):
    return _losses(nbllm.sft(str(data), **RUN))


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.15])
def test_kill_during_save_keeps_a_checkpoint_that_resumes_exactly(tmp_path, data, reference, delay):
    ckpt = tmp_path / "ckpt"
    # a checkpoint every step: the process spends much of its time inside a save when it is killed
    proc = subprocess.Popen(
        _script(f"""
        nbllm.sft({str(data)!r}, save={str(ckpt)!r}, save_every=1, **{RUN!r})
    """),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(ckpt, proc)  # the first checkpoint is in place
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # recovers a save cut between its renames; its own save clears what the killed one left beside it
    resumed = nbllm.sft(str(data), resume=str(ckpt), save=str(ckpt), **RUN)
    assert _losses(resumed) == reference
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".ckpt.")]
    assert leftovers == [], leftovers  # the next save cleared what the killed one left


def test_ctrl_c_during_training_stops_saves_and_resumes_exactly(tmp_path, data, reference):
    ckpt = tmp_path / "ckpt"
    marker = tmp_path / "step1"
    proc = subprocess.Popen(
        _script(f"""
        import pathlib, time
        def slow(row):
            pathlib.Path({str(marker)!r}).touch()
            time.sleep(0.3)  # time for the signal to land mid-run
            return False
        r = nbllm.sft({str(data)!r}, save={str(ckpt)!r}, stop_when=slow, **{RUN!r})
        print(json.dumps({{"stopped": r.stats["stopped"], "steps": len(r.history)}}))
    """),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)  # one Ctrl-C: stop after this step, keep and save the run
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["stopped"] and 0 < report["steps"] < RUN["max_steps"]
    resumed = nbllm.sft(str(data), resume=str(ckpt), **RUN)
    assert _losses(resumed) == reference


CORPUS = {f"doc{i:03d}.md": f"Document {i} is about topic {i % 7}. " * 30 for i in range(120)}


def _index_script(folder, persist, files) -> list[str]:
    return _script(f"""
        r = nbllm.rag.index({str(folder)!r}, collection="faults", persist={str(persist)!r}, chunk_size=32,
                            overlap=0)
        print(json.dumps({{"chunks": r.total}}))
    """)


@pytest.mark.parametrize("delay", [0.2, 1.0])
def test_kill_during_persistent_index_leaves_it_loadable_and_a_rerun_completes_it(tmp_path, delay):
    folder, persist = tmp_path / "docs", tmp_path / "db"
    folder.mkdir()
    names = sorted(CORPUS)
    for name in names[:20]:
        (folder / name).write_text(CORPUS[name])
    first = subprocess.run(_index_script(folder, persist, names[:20]), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = json.loads(first.stdout.strip().splitlines()[-1])["chunks"]
    for name in names[20:]:
        (folder / name).write_text(CORPUS[name])
    proc = subprocess.Popen(_index_script(folder, persist, names), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8 + delay)  # past the imports: inside loading, embedding or writing
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    check = subprocess.run(
        _script(f"""
        res = nbllm.rag.query("topic 3", collection="faults", persist={str(persist)!r}, k=3, generate=False)
        print(json.dumps({{"hits": len(res.hits)}}))
    """),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr  # still opens and answers
    assert json.loads(check.stdout.strip().splitlines()[-1])["hits"] == 3
    again = subprocess.run(_index_script(folder, persist, names), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    after = json.loads(again.stdout.strip().splitlines()[-1])["chunks"]
    fresh = subprocess.run(
        _index_script(folder, tmp_path / "fresh", names), capture_output=True, text=True, timeout=600
    )
    assert after == json.loads(fresh.stdout.strip().splitlines()[-1])["chunks"] > before  # complete, no duplicates
