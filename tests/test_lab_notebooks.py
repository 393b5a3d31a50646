"""The labs: each is a MyST markdown file paired with its notebook (jupytext), the two agree, and every
lab opens with the same Colab badge and Colab-only install cell, pointing at the repository that
pyproject.toml names, and has a parameters cell.

Edit a lab in its .md, then `jupytext --sync notebooks/NN_name.md` (or open the .md in JupyterLab with
jupytext installed, which saves both)."""

import sys
from pathlib import Path

import nbformat
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LABS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TEXTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))

# The GitHub repository the badges and the install cells point to: pyproject.toml's
# [project.urls] Repository, the one place a fork changes it (then update the labs' first two cells).
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")
GITHUB_REPO = REPO_URL.removeprefix("https://github.com/")

# What nbval and the tools read from a cell's metadata (tags: nbval-ignore-output, nbval-skip,
# raises-exception, parameters, exercise-check): a difference here changes a run or a grade.
METADATA_THAT_MATTERS = ("tags",)


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_labs():
    assert len(LABS) >= 3
    assert REPO_URL.startswith("https://github.com/") and GITHUB_REPO.count("/") == 1


def test_every_lab_is_a_pair():
    assert [p.stem for p in LABS] == [p.stem for p in TEXTS], "each notebooks/NN_name.ipynb needs its NN_name.md"


def disagreement(md, nb) -> str | None:
    """How the notebook read from a lab's .md differs from its .ipynb where it matters (None: it does not)."""
    for name, pairing in (("the .ipynb", nb.metadata), ("the .md", md.metadata)):
        if pairing.get("jupytext", {}).get("formats") != "ipynb,md:myst":
            return f"{name} is not paired (jupytext formats ipynb,md:myst)"
    if [c.cell_type for c in md.cells] != [c.cell_type for c in nb.cells]:
        return f"the cells differ ({len(md.cells)} in the .md, {len(nb.cells)} in the .ipynb, or their types)"
    for n, (ours, theirs) in enumerate(zip(md.cells, nb.cells)):
        if ours.source != theirs.source:
            return f"cell {n} ({theirs.get('id')}) has another source"
        for key in METADATA_THAT_MATTERS:
            if ours.metadata.get(key) != theirs.metadata.get(key):
                return f"cell {n} ({theirs.get('id')}) has other {key}"
    return None


@pytest.mark.parametrize("path", LABS, ids=_ids(LABS))
def test_markdown_and_notebook_agree(path):
    import jupytext

    text = path.with_suffix(".md")
    assert jupytext.formats.read_format_from_metadata(text.read_text(), ".md") == "myst", (
        f"{text.name} is not MyST markdown (jupytext format md:myst)"
    )
    problem = disagreement(jupytext.read(text), nbformat.read(path, as_version=4))
    assert problem is None, f"{path.name}: {problem}; run `jupytext --sync notebooks/{text.name}`"


def test_a_disagreement_is_found():
    import copy

    import jupytext

    nb = nbformat.read(LABS[0], as_version=4)
    md = jupytext.read(LABS[0].with_suffix(".md"))
    assert disagreement(md, nb) is None
    tagged = next(i for i, c in enumerate(nb.cells) if c.metadata.get("tags"))
    edits = {
        "another source": lambda m: setattr(m.cells[3], "source", m.cells[3].source + "\n# edited"),
        "other tags": lambda m: m.cells[tagged].metadata.update(tags=["nbval-skip"]),
        "the cells differ": lambda m: m.cells.pop(),
        "not paired": lambda m: m.metadata.pop("jupytext"),
    }
    for expected, edit in edits.items():
        changed = copy.deepcopy(md)
        edit(changed)
        assert expected in (disagreement(changed, nb) or ""), expected


@pytest.mark.parametrize("path", LABS, ids=_ids(LABS))
def test_cell_ids_are_unique(path):
    ids = [c.get("id") for c in nbformat.read(path, as_version=4).cells]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", LABS, ids=_ids(LABS))
def test_lab_starts_with_colab_badge_and_setup_and_has_parameters(path):
    nb = nbformat.read(path, as_version=4)
    badge, setup = nb.cells[0], nb.cells[1]
    url = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{path.name}"
    assert badge.cell_type == "markdown" and f"({url})" in badge.source, f"{path.name}'s badge must open {url}"
    assert setup.cell_type == "code" and 'if "google.colab" in sys.modules:' in setup.source
    assert f"git+https://github.com/{GITHUB_REPO}" in setup.source and "enable_custom_widget_manager()" in setup.source
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name} has no parameters cell"


@pytest.mark.parametrize("path", LABS[1:], ids=_ids(LABS[1:]))
def test_badge_and_colab_cell_are_the_same_in_every_lab(path):
    first, nb = nbformat.read(LABS[0], as_version=4), nbformat.read(path, as_version=4)
    assert nb.cells[0].source.replace(path.name, "{lab}") == first.cells[0].source.replace(LABS[0].name, "{lab}"), (
        f"{path.name}'s badge differs from {LABS[0].name}'s"
    )
    assert nb.cells[0].metadata == first.cells[0].metadata
    assert nb.cells[1].source == first.cells[1].source, f"{path.name}'s Colab cell differs from {LABS[0].name}'s"
    assert nb.cells[1].metadata == first.cells[1].metadata


def test_colab_cell_does_nothing_visible_off_colab(ip, capsys):
    setup = nbformat.read(LABS[0], as_version=4).cells[1].source
    assert "google.colab" not in sys.modules
    ip.run_cell(setup)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
