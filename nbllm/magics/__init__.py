"""The Magics class: one attribute per magic, each defined in its own module.

Nothing here imports torch: the backend is imported inside each magic when it runs.
"""

from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class

from .eval import eval_magic
from .info import info_magic
from .lora import lora_magic
from .rag import rag_magic
from .sft import sft_magic
from .tokenize import tokenize_magic


@magics_class
class NbllmMagics(Magics):
    tokenize_magic = cell_magic("tokenize")(tokenize_magic)
    eval_magic = line_magic("eval")(eval_magic)  # %eval mc|gen|ppl|judge|triad|arena|...
    info_magic = line_magic("nbllm")(info_magic)
    lora_magic = line_magic("lora")(lora_magic)
    rag_magic = line_cell_magic("rag")(rag_magic)  # %rag index PATH, %%rag with the question below
    sft_magic = line_cell_magic("sft")(sft_magic)  # %sft --data X, or %%sft with JSONL below


def register(shell) -> None:
    shell.register_magics(NbllmMagics)
