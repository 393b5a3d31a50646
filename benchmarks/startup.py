"""Startup costs, each in a fresh process.

bench startup load_ext_over_import_torch   %load_ext nbllm vs `import torch` (target <= 0.1)
bench startup smollm2_first_load_s         first load: GGUF dequantized and cached
bench startup smollm2_cached_load_s        later loads from the safetensors cache
bench startup smollm2_cached_over_first    target <= 0.05
"""

import os
import statistics
import subprocess
import sys
import tempfile

TIME_IMPORT_TORCH = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
TIME_LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; import time; s = InteractiveShell.instance(); "
    "t = time.perf_counter(); s.extension_manager.load_extension('nbllm'); print(time.perf_counter() - t)"
)
# Libraries are imported before the clock starts: this measures loading the model, not Python imports.
TIME_SMOLLM2 = (
    "import time, torch, transformers, nbllm; "
    "from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM; "
    "t = time.perf_counter(); nbllm.load_model('smollm2', device='cpu'); print(time.perf_counter() - t)"
)


def timed(code: str, env=None) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main(repeats: int = 5) -> None:
    torch_s = statistics.median(timed(TIME_IMPORT_TORCH) for _ in range(repeats))
    ext_s = statistics.median(timed(TIME_LOAD_EXT) for _ in range(repeats))
    print(f"bench startup import_torch_s {torch_s:.3f}")
    print(f"bench startup load_ext_s {ext_s:.4f}")
    print(f"bench startup load_ext_over_import_torch {ext_s / torch_s:.4f}")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NBLLM_CACHE=cache, HF_HUB_OFFLINE="1")
        first = timed(TIME_SMOLLM2, env)
        cached = statistics.median(timed(TIME_SMOLLM2, env) for _ in range(3))
    print(f"bench startup smollm2_first_load_s {first:.2f}")
    print(f"bench startup smollm2_cached_load_s {cached:.2f}")
    print(f"bench startup smollm2_cached_over_first {cached / first:.4f}")


if __name__ == "__main__":
    main()
