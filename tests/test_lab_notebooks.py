"""Every lab opens with its Colab badge and the Colab-only install cell, and has a parameters cell."""

import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOKS / "_build"))
from _labs import GITHUB_REPO  # noqa: E402

LABS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_labs():
    assert len(LABS) >= 3


@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_lab_starts_with_colab_badge_and_setup_and_has_parameters(path):
    nb = nbformat.read(path, as_version=4)
    badge, setup = nb.cells[0], nb.cells[1]
    url = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{path.name}"
    assert badge.cell_type == "markdown" and f"({url})" in badge.source, f"rerun notebooks/_build for {path.name}"
    assert setup.cell_type == "code" and 'if "google.colab" in sys.modules:' in setup.source
    assert f"git+https://github.com/{GITHUB_REPO}" in setup.source and "enable_custom_widget_manager()" in setup.source
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name} has no parameters cell"


def test_colab_cell_does_nothing_visible_off_colab(ip, capsys):
    setup = nbformat.read(LABS[0], as_version=4).cells[1].source
    assert "google.colab" not in sys.modules
    ip.run_cell(setup)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
