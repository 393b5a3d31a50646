"""A real JupyterLab on loopback, driven by Playwright with Debian's chromium.

Shared by tests/browser/test_jupyterlab.py and scripts/lab_screenshots.py.

    with JupyterLab(root_dir) as lab, browser() as b:
        page = lab.open(b, "test.ipynb")
        run_cell(page, 0)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# User settings for the test server: no news/update prompts (no network anyway), and every cell
# attached to the DOM so off-screen cells and outputs can be located.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """`jupyter lab` from this Python's environment serving root_dir; stopped on exit."""

    def __init__(self, root_dir: Path, env: dict | None = None, timeout: float = 90):
        self.root_dir, self.extra_env, self.timeout = Path(root_dir), env or {}, timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = Path(tempfile.mkdtemp(prefix="nbllm-lab-"))  # settings, workspaces, runtime, log
        self.proc = None

    def __enter__(self) -> "JupyterLab":
        settings = self.state / "settings"
        for name, values in SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        bin_dir = str(Path(sys.executable).parent)
        env = dict(
            os.environ,
            PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.state / "ws"),
            JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        self.log = open(self.state / "jupyter.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}",
                "--ServerApp.port_retries=0",
                "--LabApp.extension_manager=readonly",
            ]
            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.root_dir,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log_text()
                self.__exit__(None, None, None)
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{log}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        log = self.log_text()
        self.__exit__(None, None, None)
        raise RuntimeError(f"jupyter lab did not answer in {self.timeout:.0f} s:\n{log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.state, ignore_errors=True)

    def log_text(self) -> str:
        self.log.flush()
        return (self.state / "jupyter.log").read_text(errors="replace")[-4000:]

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}&reset"

    def open(self, browser, notebook: str, width: int = 1200, height: int = 900):
        """Open a notebook in a fresh page and wait until its kernel is idle."""
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(self.url(notebook))
        wait_kernel_idle(page)
        return page


@contextmanager
def browser():
    """Debian's chromium through Playwright (Playwright passes its own user-data-dir)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_kernel_idle(page, timeout: float = 120_000) -> None:
    """The notebook is drawn (no spinner) and the status bar reads "<kernel> | Idle"."""
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible", timeout=timeout)
    page.locator(".jp-StatusBar-TextItem").filter(has_text=re.compile(r"\| Idle$")).first.wait_for(timeout=timeout)


def cells(page):
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")


def run_cell(page, index: int, wait: bool = True, timeout: float = 120_000):
    """Select cell `index` as a user would (click its prompt) and press Shift+Enter; wait until it ran.

    Right after a notebook opens JupyterLab may still re-render it and drop the key press; a cell
    that is still `[ ]` a few seconds later gets the press again (a queued cell shows `[*]` at once,
    so nothing runs twice)."""
    cell = cells(page).nth(index)
    prompt = cell.locator(".jp-InputArea-prompt")
    for attempt in range(3):
        prompt.click()
        page.keyboard.press("Shift+Enter")
        try:
            prompt.filter(has_text=re.compile(r"\[(\*|\d+)\]")).wait_for(timeout=5_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: press again
            print(f"run_cell({index}): key press not taken, pressing again", file=sys.stderr)
            if attempt == 2:
                raise
    if wait:
        wait_cell_done(cell, timeout)
    return cell


def wait_cell_done(cell, timeout: float = 120_000) -> None:
    """The prompt reads [*] while a cell runs and [n] once it ran."""
    cell.locator(".jp-InputArea-prompt").filter(has_text=re.compile(r"\[\d+\]")).wait_for(timeout=timeout)
