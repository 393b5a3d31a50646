"""The labs' widgets in a real browser: JupyterLab on loopback, Debian's chromium through Playwright.

Run: .venv/bin/python -m pytest tests/browser -m browser -q   (screenshots land in build/screenshots/)
Needs /usr/bin/chromium (`apt-get install chromium`); skipped without it, except under CI=true.
"""

import os
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labserver import CHROMIUM, JupyterLab, browser, cells, run_cell, wait_cell_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow: `make test-fast` leaves it out

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
STEPS = 40
# tiny-llama is a seeded random 2-layer model: 40 steps of one short example each take seconds
SFT = (
    f"%sft --model tiny-llama --data instructions --max-steps {STEPS} --batch-size 1 --max-length 256 "
    "--samples 0 --val-fraction 0.05 --eval-every 20 --progress widget --out run"
)

DOCS = {
    "lora.md": "# LoRA\n\nLoRA freezes the pretrained weights and trains two small low-rank matrices B and A per "
    "adapted layer, so the update B A has far fewer trainable parameters than the full weight.\n",
    "tokens.md": "# Tokens\n\nA byte-pair tokenizer splits text into subword pieces; rare words need more tokens.\n"
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">\n',
    "retrieval.md": "# Retrieval\n\nRetrieval-augmented generation embeds the question, finds the nearest chunks in "
    "a vector store and puts them in the prompt.\n",
}

# every DOM change of the progress bar's label, recorded in the page while the cell runs
RECORD_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver(() => {
    const label = document.querySelector('.nbllm-train-progress .widget-label');
    const text = label && label.textContent;
    if (text && window.__progress[window.__progress.length - 1] !== text) window.__progress.push(text);
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _chromium_or_skip():
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install playwright)"
    else:
        missing = None if os.access(CHROMIUM, os.X_OK) else f"{CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test needs {missing}")
        pytest.skip(f"browser test needs {missing}")


@contextmanager
def _shot_on_failure(page, name: str):
    """Keep what the browser showed when a check failed: build/screenshots/<name>_failure.png."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(SHOTS / f"{name}_failure.png"), full_page=True)
        raise


def _notebook(path: Path, *sources: str) -> None:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _chromium_or_skip()
    root = tmp_path_factory.mktemp("lab")
    _notebook(root / "sft.ipynb", "%load_ext nbllm", SFT, "int(run.history.step.iloc[-1])")
    (root / "docs").mkdir()
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text)
    _notebook(root / "rag.ipynb", "%load_ext nbllm", "%rag index docs", "%rag explore")
    with served(root) as server:
        yield server


@contextmanager
def served(root: Path):
    """JupyterLab on `root` with a chromium attached as .chromium. NBLLM_CACHE: the kernel's
    caches and vector stores stay in the temporary folder."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with JupyterLab(root, env={"NBLLM_CACHE": str(root / "cache")}) as server, browser() as chromium:
        server.chromium = chromium
        yield server


def test_sft_widget_renders_and_updates_live(lab):
    page = lab.open(lab.chromium, "sft.ipynb")
    with _shot_on_failure(page, "sft_widget"):
        run_cell(page, 0)
        page.evaluate(RECORD_PROGRESS)
        cell = run_cell(page, 1, wait=False)
        monitor = cell.locator(".nbllm-train-monitor")
        monitor.wait_for(timeout=60_000)  # the widget shows up while the cell still runs
        wait_cell_done(cell)

        seen = page.evaluate("window.__progress")
        assert seen[-1] == f"{STEPS}/{STEPS}", seen
        assert len(set(seen)) >= 3, f"the progress bar did not move step by step while training: {seen}"
        steps = [int(s.split("/")[0]) for s in seen]
        assert steps == sorted(steps), seen
        assert monitor.locator(".nbllm-train-stop").inner_text().strip() == "Done"
        assert "loss" in monitor.locator(".nbllm-train-stats").inner_text()
        assert monitor.locator(".nbllm-train-plot svg").count() == 1  # the loss curve
        monitor.scroll_into_view_if_needed()
        monitor.screenshot(path=str(SHOTS / "sft_widget.png"))

        result = run_cell(page, 2)  # the kernel agrees with what the widget showed
        assert result.locator(".jp-OutputArea-output").inner_text().strip() == str(STEPS)
    page.close()


FIRST_HIT_HAS = (
    "text => { const h = document.querySelector('.nbllm-rag-explorer .nbllm-hit');"
    " return h !== null && h.textContent.includes(text); }"
)


@pytest.mark.skipif(not (ROOT / "nbllm" / "magics" / "rag.py").exists(), reason="the %rag magic is not written yet")
def test_rag_explorer_answers_a_typed_query(lab):
    page = lab.open(lab.chromium, "rag.ipynb")
    with _shot_on_failure(page, "rag_explorer"):
        for i in range(3):
            run_cell(page, i)
        explorer = cells(page).nth(2).locator(".nbllm-rag-explorer")
        explorer.wait_for(timeout=60_000)
        box = explorer.locator(".nbllm-rag-query input, .nbllm-rag-query textarea, input.nbllm-rag-query").first

        box.fill("How many parameters does a low-rank adapter train?")
        box.press("Enter")
        page.wait_for_function(FIRST_HIT_HAS, arg="low-rank", timeout=60_000)
        explorer.screenshot(path=str(SHOTS / "rag_explorer.png"))

        # a retrieved document with <script> and an onerror handler shows as text and never runs
        box.fill("byte-pair tokenizer subword pieces")
        box.press("Enter")
        page.wait_for_function(FIRST_HIT_HAS, arg="byte-pair", timeout=60_000)
        assert "<script>" in explorer.locator(".nbllm-hit").first.inner_text()
        assert page.evaluate("window.__pwned") is None
    page.close()
