"""Peak memory for the benchmarks: each side runs in a fresh process, and the figure is the
growth of its resident set (RSS) over a measured window, sampled every 10 ms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakGrowth:
    """with PeakGrowth() as p: ...  then p.bytes is the peak RSS growth inside the block."""

    def __enter__(self):
        self.start, self.peak, self._stop = rss_bytes(), 0, threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self.bytes = max(self.peak, rss_bytes()) - self.start
        return False


def in_fresh_process(module: str, call: str) -> dict:
    """Run `module.call` (a call expression that prints one JSON line) in a new interpreter."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = f"import sys; sys.path.insert(0, {here!r}); import {module}; {module}.{call}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
