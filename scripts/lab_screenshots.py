"""One screenshot per lab for the README: docs/screenshots/NN.png.

For each notebooks/NN_*.ipynb: execute it with nbclient into build/ (an executed copy there that
is newer than the lab is reused), open the executed copy in a real JupyterLab through Playwright
and Debian's chromium, scroll to the first widget or plot, and save that view (1200 px wide,
palette PNG to keep the file small).

    .venv/bin/python scripts/lab_screenshots.py            # every lab
    .venv/bin/python scripts/lab_screenshots.py 01 04      # some labs
    .venv/bin/python scripts/lab_screenshots.py 03 --at "%%sft"   # frame the first cell containing this text
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from labserver import JupyterLab, browser  # noqa: E402

NOTEBOOKS, BUILD, SHOTS = ROOT / "notebooks", ROOT / "build", ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = 1200, 800
# what is worth showing: the first cell whose output is a widget, a plot or an SVG chart
FOCUS = [".jp-OutputArea-output .jupyter-widgets", ".jp-OutputArea-output img", ".jp-OutputArea-output svg"]


def executed_copy(lab: Path) -> Path:
    out = BUILD / lab.name
    if out.exists() and out.stat().st_mtime > lab.stat().st_mtime:
        print(f"{lab.name}: reusing {out.relative_to(ROOT)}")
        return out
    from nbclient import NotebookClient

    nb = nbformat.read(lab, as_version=4)
    started = time.perf_counter()
    # store_widget_state: the widgets' last state goes into the file, so JupyterLab can draw them again
    NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    BUILD.mkdir(exist_ok=True)
    nbformat.write(nb, out)
    print(f"{lab.name}: executed in {time.perf_counter() - started:.0f} s -> {out.relative_to(ROOT)}")
    return out


def trust(path: Path) -> None:
    """Sign the executed copy as `jupyter trust` does: JupyterLab then shows its HTML outputs
    (SVG charts included) unsanitized and draws the widgets from their saved state."""
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(path, as_version=4)
    NotebookNotary().sign(nb)


def screenshot(server, chromium, executed: Path, target: Path, at: str | None) -> None:
    trust(executed)
    page = server.open(chromium, executed.name, width=WIDTH, height=HEIGHT)
    page.keyboard.press("Control+b")  # hide the file browser: more room for the notebook
    # widgets drawn from saved state have no kernel behind them: hide the "disconnected" marks
    page.add_style_tag(content=".jupyter-widgets-disconnected::before { display: none !important; }")
    page.wait_for_timeout(500)
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    if at:
        focus = cells.filter(has_text=at).first
    else:
        focus = page.locator(", ".join(FOCUS)).first
        focus = cells.filter(has=focus).first if focus.count() else cells.first
    focus.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)  # let the widgets and images finish drawing
    box = page.locator(".jp-NotebookPanel").bounding_box()
    png = page.screenshot(clip=box)
    page.close()

    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(png)).convert("RGB").quantize(colors=128)  # palette PNG: a fraction of the size
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, optimize=True)
    print(
        f"{executed.name}: {target.relative_to(ROOT)} "
        f"({image.width}x{image.height}, {target.stat().st_size // 1024} KB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labs", nargs="*", help="lab numbers, e.g. 01 04 (default: all)")
    parser.add_argument("--at", default=None, help="frame the first cell whose text contains this")
    args = parser.parse_args()
    labs = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not args.labs or p.name[:2] in args.labs)
    if not labs:
        parser.error(f"no lab matches {args.labs} in {NOTEBOOKS}")
    executed = [executed_copy(lab) for lab in labs]
    with JupyterLab(BUILD) as server, browser() as chromium:
        for path in executed:
            screenshot(server, chromium, path, SHOTS / f"{path.name[:2]}.png", args.at)


if __name__ == "__main__":
    main()
