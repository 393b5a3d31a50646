"""The session's leaderboard: every eval result run in this process, one row per metric.

Each evaluator calls `record(result)`; a rerun of the same (model, task, metric) on the same
weights and data replaces the old row instead of adding a duplicate, so re-executing a notebook
cell keeps one row. Each row carries its result's provenance (nbllm.provenance.COLUMNS): two
results from different weights or data (the model's and the data's fingerprints) never share a row."""

from __future__ import annotations

from pathlib import Path

_ROWS: dict[tuple, dict] = {}


def _with_provenance(row: dict, prov) -> dict:
    from ..provenance import COLUMNS

    if prov is None:
        return {**row, **{c: None for c in COLUMNS}}
    cols = prov.columns()
    per_model = prov.extra.get("models") or {}  # one result over several models (diversity)
    if row["model"] in per_model:
        cols["model_fingerprint"] = per_model[row["model"]]
    return {**row, **cols}


def record(result) -> None:
    """Put a result's leaderboard rows on the board (latest run wins per model, task, metric,
    weights and data)."""
    prov = getattr(result, "provenance", None)
    for row in result.leaderboard_rows():
        row = _with_provenance(row, prov)
        key = (row["model"], row["task"], row["metric"], row["model_fingerprint"], row["data_fingerprint"])
        _ROWS.pop(key, None)  # move a rerun to the end, in run order
        _ROWS[key] = row


def clear() -> None:
    _ROWS.clear()


def leaderboard(csv: str | None = None, markdown: str | None = None, task: str | None = None, json: str | None = None):
    """Every recorded eval result in one table (model, task, metric, value, n, ci_low, ci_high,
    then the provenance columns); optionally written to CSV, markdown and/or JSON files."""
    from .results import LeaderboardResult

    from ..errors import DataError
    from ..paths import check_destination

    rows = [dict(r) for r in _ROWS.values() if task is None or r["task"] == task]
    board = LeaderboardResult(rows)
    exports = [(flag, path) for flag, path in (("--csv", csv), ("--markdown", markdown), ("--json", json)) if path]
    for flag, path in exports:
        check_destination(path, flag, kind="file")
    if exports and not rows:
        which = f"of task '{task}' " if task else ""
        tasks = sorted({r["task"] for r in _ROWS.values()})
        raise DataError(
            f"no results {which}to export (nothing was written); run an %eval first"
            + (f", or pick a task: {', '.join(tasks)}" if task and tasks else "")
        )
    for _, path in exports:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if csv:
        board.to_csv(csv)
    if markdown:
        board.to_markdown(markdown)
    if json:
        board.to_json(json)
    return board
