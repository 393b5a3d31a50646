"""The real embedded defaults, offline. Slow: the first smollm2 load dequantizes the GGUF."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r"""
import time, torch, nbllm
from nbllm import models
model, tok = nbllm.load_model("smollm2")
assert (models.cache_dir() / "models" / "smollm2" / "DONE").exists()
assert model.config.num_hidden_layers == 30 and model.dtype == torch.float32
ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=12, do_sample=False)
print("ANSWER", tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
t = time.perf_counter(); models.load_model("smollm2"); print("CACHED_S", time.perf_counter() - t)

from sentence_transformers import SentenceTransformer
enc = SentenceTransformer(str(models.minilm_dir()), device="cpu")
a, b, c = enc.encode(["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock prices fell today."],
                     normalize_embeddings=True)
print("EMB", enc.get_sentence_embedding_dimension(), float(a @ b), float(a @ c))
"""


def test_packaged_models_load_offline_and_work():
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.split(" ")[0].isupper())
    assert "Paris" in lines["ANSWER"]
    assert float(lines["CACHED_S"]) < 30
    dim, near, far = lines["EMB"].split()
    assert dim == "384" and float(near) > float(far) + 0.3
