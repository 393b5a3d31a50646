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


class Lab:
    def __init__(self, prefix: str, out: Path):
        self.prefix, self.out, self.cells = prefix, out, []

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
