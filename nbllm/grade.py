"""Grade students' lab notebooks: run each headless, read its exercise checks, write one table.

    python -m nbllm.grade submissions/*/01_tokens.ipynb [--timeout 900] [--out grades]

Each notebook runs top to bottom in a kernel of its own (nbclient, the notebook's folder as the working
directory), under one time limit for the whole notebook. A cell that raises does not stop the run (the
next cells still run, so one typo does not cost every exercise); a notebook that times out stops there.
Either way it gets its row.

How a lab states its checks (the contract the labs keep, tests/test_grade.py holds it):

- a check cell is a code cell tagged ``exercise-check``;
- it prints one line per exercise: ``exercise NAME pass[: text]`` or ``exercise NAME not yet[: text]``;
- a line ``not yet: text`` without a name (a check that failed as a whole), or an exception out of the
  cell, counts for each exercise that cell names in its source (``exercise 1``, ``exercise 2b``) and did
  not report.

Written to DIR (default ``grades/``): ``grades.csv`` and ``grades.md`` (one table: a row per notebook,
with the student, the lab, how the run ended, the number of checks passed, and a column per exercise
holding ``pass`` or the check's message), and ``executed/``, each notebook as it ran, outputs included.

The student is the part of the path that tells the notebooks apart (``submissions/alice/01_tokens.ipynb``
-> ``alice``, ``alice-01_tokens.ipynb`` -> ``alice``); the lab is the one the notebook's Colab badge
names, or else its file name.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHECK_TAG", "Exercise", "Graded", "grade", "grade_notebook", "main", "parse_checks", "write_table"]

CHECK_TAG = "exercise-check"
DEFAULT_TIMEOUT = 900.0

LINE = re.compile(r"^\s*exercise\s+(?P<name>[\w.-]+)\s+(?P<verdict>pass|not yet)\b:?\s*(?P<text>.*?)\s*$", re.I)
UNNAMED = re.compile(r"^\s*(?P<verdict>pass|not yet)\b:?\s*(?P<text>.*?)\s*$", re.I)
NAMED_IN_SOURCE = re.compile(r"\bexercise\s+([0-9]+[a-z]?)\b", re.I)
BADGE_LAB = re.compile(r"notebooks/([0-9]{2}_[\w-]+)\.ipynb")


@dataclass
class Exercise:
    name: str
    status: str  # "pass" | "not yet" | "error" | "not run"
    message: str = ""

    @property
    def cell(self) -> str:
        """What the table shows: `pass`, or the status and its message."""
        if self.status == "pass":
            return "pass"
        return f"{self.status}: {self.message}" if self.message else self.status


@dataclass
class Graded:
    path: Path
    student: str
    lab: str
    status: str = "ok"  # "ok" | "error" | "timeout" | "failed"
    message: str = ""
    seconds: float = 0.0
    exercises: dict[str, Exercise] = field(default_factory=dict)
    executed: Path | None = None

    @property
    def passed(self) -> int:
        return sum(e.status == "pass" for e in self.exercises.values())

    @property
    def run(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


# ---------------------------------------------------------------- reading the checks


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def _error(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {o.get('evalue', '')}".rstrip(": ")
    return None


def check_cells(nb) -> list[int]:
    """Indices of the cells tagged `exercise-check`."""
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and CHECK_TAG in c.get("metadata", {}).get("tags", [])
    ]


def parse_checks(nb, ran: set[int] | None = None) -> dict[str, Exercise]:
    """The exercises of an executed notebook, in the order its check cells name them. `ran` holds the
    indices of the cells that were executed (None: all); a check cell outside it is `not run`."""
    found: dict[str, Exercise] = {}
    for i in check_cells(nb):
        cell = nb.cells[i]
        named = list(dict.fromkeys(NAMED_IN_SOURCE.findall(cell.source)))
        reported, failure = [], None
        if ran is not None and i not in ran:
            failure = ("not run", "the notebook stopped before this check")
        else:
            for line in _stdout(cell).splitlines():
                m = LINE.match(line)
                if m:
                    name = m["name"]
                    found[name] = Exercise(name, m["verdict"].lower(), m["text"])
                    reported.append(name)
                elif (u := UNNAMED.match(line)) and u["verdict"].lower() == "not yet" and failure is None:
                    failure = ("not yet", u["text"])
            err = _error(cell)
            if err:
                failure = ("error", f"the check raised {err}")
        for name in named:
            if name not in reported and name not in found:
                status, message = failure or ("not yet", "the check printed nothing for it")
                found[name] = Exercise(name, status, message)
        if failure and not named and not reported:  # a check that names nothing: one entry for the cell
            found[f"cell {i}"] = Exercise(f"cell {i}", *failure)
    return found


def lab_name(nb, path: Path) -> str:
    """The lab a notebook is: the file its Colab badge opens, or else its own file name."""
    if nb.cells and nb.cells[0].cell_type == "markdown":
        m = BADGE_LAB.search(nb.cells[0].source)
        if m:
            return m[1]
    return path.stem


def _students(paths: list[Path], labs: list[str]) -> list[str]:
    """The part of each path that tells the notebooks apart, less the lab's name."""
    resolved = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved])) if resolved else Path()
    names = []
    for p, lab in zip(resolved, labs):
        rel = p.relative_to(common).with_suffix("").as_posix()
        name = rel[: -len(lab)] if lab and rel.endswith(lab) else rel
        name = name.strip("/_- .")
        names.append(name or p.parent.name or p.stem)
    return names


# ---------------------------------------------------------------- running a notebook


def grade_notebook(
    path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    student: str | None = None,
    lab: str | None = None,
    executed_dir: Path | None = None,
    kernel_name: str | None = None,
) -> Graded:
    """Run one notebook in a fresh kernel, within `timeout` seconds in all, and read its checks.
    Never raises for what the notebook does: a notebook that cannot be read, raises or times out
    comes back with that status."""
    import nbformat

    path = Path(path)
    started = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not a notebook: still a row
        return Graded(
            path,
            student or path.stem,
            lab or path.stem,
            "failed",
            f"cannot read the notebook ({type(err).__name__}: {err})",
        )
    graded = Graded(path, student or path.parent.name, lab or lab_name(nb, path))
    ran: set[int] = set()
    try:
        _execute(nb, path, timeout, ran, graded, kernel_name)
    except Exception as err:  # the kernel would not start or died: still a row
        graded.status, graded.message = "failed", f"{type(err).__name__}: {err}".strip()
    graded.seconds = time.perf_counter() - started
    graded.exercises = parse_checks(nb, ran)
    if executed_dir is not None:
        target = Path(executed_dir) / _safe(graded.student) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        graded.executed = target
    return graded


def _execute(nb, path: Path, timeout: float, ran: set[int], graded: Graded, kernel_name: str | None) -> None:
    import asyncio

    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name=name,
        startup_timeout=max(60, int(timeout)),
        interrupt_on_timeout=False,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )

    async def run() -> None:
        deadline = time.monotonic() + timeout
        async with client.async_setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    graded.status, graded.message = "timeout", f"over {timeout:g} s before cell {index}"
                    return
                client.timeout = max(1, int(left + 0.999))
                try:
                    await client.async_execute_cell(cell, index)
                except CellTimeoutError:
                    graded.status, graded.message = "timeout", f"over {timeout:g} s in cell {index}"
                    return
                except DeadKernelError as err:
                    graded.status, graded.message = "failed", f"the kernel died in cell {index} ({err})"
                    return
                ran.add(index)
                err = _error(cell)
                if err and graded.status == "ok" and "raises-exception" not in cell.metadata.get("tags", []):
                    graded.status, graded.message = "error", f"cell {index}: {err}"

    if _loop_running():
        _run_in_thread(run)
    else:
        asyncio.run(run())


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _run_in_thread(coro_fn) -> None:
    """From inside a running event loop (a notebook calling grade()), run in a thread of its own."""
    import asyncio
    import threading

    box: list[BaseException] = []

    def target():
        try:
            asyncio.run(coro_fn())
        except BaseException as err:  # re-raised in the caller
            box.append(err)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if box:
        raise box[0]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name) or "notebook"


# ---------------------------------------------------------------- the table


def grade(
    paths, *, timeout: float = DEFAULT_TIMEOUT, out: Path | str | None = "grades", progress=None
) -> list[Graded]:
    """Grade every notebook in `paths` (one kernel each, one after the other) and, unless `out` is
    None, write `out`/grades.csv, `out`/grades.md and the executed notebooks under `out`/executed/."""
    import nbformat

    paths = [Path(p) for p in paths]
    labs = []
    for p in paths:
        try:
            labs.append(lab_name(nbformat.read(p, as_version=4), p))
        except Exception:
            labs.append(p.stem)
    students = _students(paths, labs)
    out = Path(out) if out is not None else None
    results = []
    for path, student, lab in zip(paths, students, labs):
        g = grade_notebook(
            path,
            timeout=timeout,
            student=student,
            lab=lab,
            executed_dir=out / "executed" / _safe(lab) if out is not None else None,
        )
        results.append(g)
        if progress:
            progress(g)
    _fill_missing(results)
    if out is not None:
        write_table(results, out)
    return results


def _fill_missing(results: list[Graded]) -> None:
    """A notebook that stopped early, or whose student deleted a check, shows `not run` for the
    exercises the other notebooks of its lab report."""
    names: dict[str, list[str]] = {}
    for g in results:
        for n in g.exercises:
            names.setdefault(g.lab, [])
            if n not in names[g.lab]:
                names[g.lab].append(n)
    for g in results:
        for n in names.get(g.lab, []):
            if n not in g.exercises:
                why = g.run if g.status != "ok" else "no check reported it"
                g.exercises[n] = Exercise(n, "not run", why)


def columns(results: list[Graded]) -> list[tuple[str, str, str]]:
    """(header, lab, exercise) for each exercise column: `exercise 1`, or `01_tokens: exercise 1`
    when the table holds several labs."""
    several = len({g.lab for g in results}) > 1
    cols, seen = [], set()
    for g in results:
        for n in g.exercises:
            if (g.lab, n) not in seen:
                seen.add((g.lab, n))
                title = n if n.startswith("cell ") else f"exercise {n}"
                cols.append((f"{g.lab}: {title}" if several else title, g.lab, n))
    return cols


def rows(results: list[Graded]) -> tuple[list[str], list[list[str]]]:
    cols = columns(results)
    header = ["student", "lab", "run", "passed", "seconds"] + [c[0] for c in cols] + ["notebook"]
    body = []
    for g in results:
        total = len(g.exercises)
        cells = [g.exercises[n].cell if g.lab == lab and n in g.exercises else "" for _, lab, n in cols]
        body.append([g.student, g.lab, g.run, f"{g.passed}/{total}", f"{g.seconds:.0f}", *cells, str(g.path)])
    return header, body


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown(results: list[Graded]) -> str:
    header, body = rows(results)
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def write_table(results: list[Graded], out: Path | str) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header, body = rows(results)
    csv_path, md_path = out / "grades.csv", out / "grades.md"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)
    md_path.write_text(markdown(results), encoding="utf-8")
    return csv_path, md_path


# ---------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nbllm.grade",
        description="Run students' lab notebooks headless and tabulate their exercise checks "
        "(cells tagged exercise-check printing 'exercise N pass|not yet: ...').",
    )
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", type=Path)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for each whole notebook (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        metavar="DIR",
        help="where grades.csv, grades.md and executed/ go (default grades/)",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout:g}")
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error("no such notebook: " + ", ".join(missing))

    def progress(g: Graded) -> None:
        print(
            f"{g.student or '?'} {g.lab}: {g.run}, {g.passed}/{len(g.exercises)} passed ({g.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    results = grade(args.notebooks, timeout=args.timeout, out=args.out, progress=progress)
    print(markdown(results), end="")
    print(
        f"wrote {args.out / 'grades.csv'}, {args.out / 'grades.md'} and the executed notebooks "
        f"under {args.out / 'executed'}/",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
