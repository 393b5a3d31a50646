"""The Magics class: one attribute per magic, each defined in its own module.

Session-wide defaults are traits (`%config NbllmMagics` lists them), read by the magics when
the flag is not given:

    %config NbllmMagics.progress = "text"           # %%sft --progress, and quiet %eval with "none"
    %config NbllmMagics.default_model = "tiny-llama"  # --model of %%sft, %%tokenize, %%rag, %eval

Nothing here imports torch: the backend is imported inside each magic when it runs.
"""

from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from traitlets import Enum, TraitError, Unicode, validate

from ..config import PROGRESS
from .eval import eval_magic
from .info import info_magic
from .lora import lora_magic
from .rag import rag_magic
from .sft import sft_magic
from .tokenize import tokenize_magic


@magics_class
class NbllmMagics(Magics):
    progress = Enum(
        PROGRESS,
        default_value="auto",
        help="live progress view of %%sft when --progress is not "
        "given: " + " | ".join(PROGRESS) + " (auto: the NBLLM_PROGRESS environment variable if set, "
        "else a widget in a notebook); none also quiets %eval's progress bars",
    ).tag(config=True)
    default_model = Unicode(
        None, allow_none=True, help="the model a magic uses when --model is not given (None: smollm2)"
    ).tag(config=True)

    tokenize_magic = cell_magic("tokenize")(tokenize_magic)
    eval_magic = line_magic("eval")(eval_magic)  # %eval mc|gen|ppl|judge|triad|arena|...
    info_magic = line_magic("nbllm")(info_magic)
    lora_magic = line_magic("lora")(lora_magic)
    rag_magic = line_cell_magic("rag")(rag_magic)  # %rag index PATH, %%rag with the question below
    sft_magic = line_cell_magic("sft")(sft_magic)  # %sft --data X, or %%sft with JSONL below

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        if shell is not None and self not in shell.configurables:
            shell.configurables.append(self)  # so %config NbllmMagics.<trait> = ... reaches it

    @validate("default_model")
    def _check_model(self, proposal):
        value = proposal["value"]
        if value is not None and not value.strip():
            raise TraitError("NbllmMagics.default_model must name a model, e.g. 'smollm2' (got an empty string)")
        return value


def register(shell) -> None:
    from .rag import question_line

    shell.register_magics(NbllmMagics)
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and question_line not in cleanup:
        cleanup.append(question_line)
