"""Shared by the lab builders: turn a list of (kind, source, tags) cells into a clean notebook."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def build(cells: list, prefix: str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    for n, (kind, source, tags) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"{prefix}-{n:02d}"  # stable ids: regenerating gives no diff
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def write(cells: list, prefix: str, out: Path) -> None:
    nbformat.write(build(cells, prefix), out)
    print(f"wrote {out} ({len(cells)} cells)")
