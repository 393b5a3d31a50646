"""python -m nbllm.grade: notebooks run headless, one kernel each, and their exercise checks (cells tagged
exercise-check printing 'exercise N pass|not yet: ...') land in one table; a notebook that raises or
times out still gets its row. The slow test grades the real Lab 1, as shipped and with its exercises solved."""

import csv
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbllm import grade as g

LAB1 = Path(__file__).resolve().parents[1] / "notebooks" / "01_tokens.ipynb"


def _notebook(path: Path, *cells) -> Path:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for kind, source, tags in cells:
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


CHECK = (
    "code",
    'print("exercise 1", "pass: 42" if answer == 42 else "not yet: answer is not 42")\n'
    'print("exercise 2 not yet: set other")',
    ["exercise-check"],
)


def test_parse_checks_reads_named_lines_and_charges_a_failed_check_to_the_exercises_it_names():
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1"),
            new_code_cell('print("exercise 1 ...")\nprint("exercise 2 ...")'),
            new_code_cell("check()"),
            new_code_cell("check_all()"),
        ]
    )
    for i in (1, 2, 3):
        nb.cells[i].metadata["tags"] = ["exercise-check"]
    nb.cells[0].outputs = [
        {"output_type": "stream", "name": "stdout", "text": "exercise 9 pass\n"}
    ]  # not a check cell
    nb.cells[1].outputs = [
        {
            "output_type": "stream",
            "name": "stdout",
            "text": "exercise 1 pass: 3.50 epochs\nsome other line\nexercise 2 not yet: set x. Hint: y\n",
        }
    ]
    nb.cells[2].outputs = [
        {"output_type": "error", "ename": "NameError", "evalue": "name 'check' is not defined", "traceback": []}
    ]
    nb.cells[2].source = "# exercise 3\ncheck()"
    nb.cells[3].outputs = [{"output_type": "stream", "name": "stdout", "text": "not yet: KeyError: 'q'\n"}]
    found = g.parse_checks(nb)
    assert [(e.name, e.status, e.message) for e in found.values()] == [
        ("1", "pass", "3.50 epochs"),
        ("2", "not yet", "set x. Hint: y"),
        ("3", "error", "the check raised NameError: name 'check' is not defined"),
        ("cell 3", "not yet", "KeyError: 'q'"),
    ]
    assert g.parse_checks(nb, ran={0})["1"].status == "not run"


def test_students_are_what_tells_the_paths_apart(tmp_path):
    paths = [tmp_path / "alice" / "01_tokens.ipynb", tmp_path / "bob" / "01_tokens.ipynb"]
    assert g._students(paths, ["01_tokens"] * 2) == ["alice", "bob"]
    flat = [tmp_path / "alice-01_tokens.ipynb", tmp_path / "bob_01_tokens.ipynb"]
    assert g._students(flat, ["01_tokens"] * 2) == ["alice", "bob"]
    assert g._students([tmp_path / "carol" / "01_tokens.ipynb"], ["01_tokens"]) == ["carol"]


def test_the_table_has_a_row_per_notebook_and_a_column_per_exercise(tmp_path):
    one = g.Graded(
        Path("a/01_x.ipynb"),
        "alice",
        "01_x",
        seconds=3.2,
        exercises={"1": g.Exercise("1", "pass", "fine"), "2": g.Exercise("2", "not yet", "a | b\nc")},
    )
    two = g.Graded(Path("b/01_x.ipynb"), "bob", "01_x", "timeout", "over 5 s in cell 3")
    other = g.Graded(Path("a/02_y.ipynb"), "alice", "02_y", exercises={"1": g.Exercise("1", "error", "boom")})
    g._fill_missing([one, two])
    assert two.exercises["1"].cell == "not run: timeout: over 5 s in cell 3"
    csv_path, md_path = g.write_table([one, two], tmp_path)
    with csv_path.open() as f:
        assert list(csv.reader(f)) == [
            ["student", "lab", "run", "passed", "seconds", "exercise 1", "exercise 2", "notebook"],
            ["alice", "01_x", "ok", "1/2", "3", "pass", "not yet: a | b\nc", "a/01_x.ipynb"],
            [
                "bob",
                "01_x",
                "timeout: over 5 s in cell 3",
                "0/2",
                "0",
                "not run: timeout: over 5 s in cell 3",
                "not run: timeout: over 5 s in cell 3",
                "b/01_x.ipynb",
            ],
        ]
    assert "| alice | 01_x | ok | 1/2 | 3 | pass | not yet: a \\| b c | a/01_x.ipynb |" in md_path.read_text()
    header, body = g.rows([one, other])  # several labs: the columns say which
    assert header[5:8] == ["01_x: exercise 1", "01_x: exercise 2", "02_y: exercise 1"]
    assert body[1][5:8] == ["", "", "error: boom"]


@pytest.mark.slow  # five kernels, one of them waits out its timeout (about 15 s)
def test_grade_runs_each_notebook_and_a_failing_or_hanging_one_still_gets_a_row(tmp_path, capsys):
    subs = tmp_path / "subs"
    solved = _notebook(subs / "alice" / "lab.ipynb", ("md", "# Lab", []), ("code", "answer = 42", []), CHECK)
    unsolved = _notebook(subs / "bob" / "lab.ipynb", ("code", "answer = None", []), CHECK)
    raises = _notebook(
        subs / "carol" / "lab.ipynb", ("code", "answer = 42", []), ("code", "raise ValueError('my bad')", []), CHECK
    )
    hangs = _notebook(subs / "dave" / "lab.ipynb", ("code", "import time\ntime.sleep(120)", []), CHECK)
    broken = subs / "erin" / "lab.ipynb"
    broken.parent.mkdir()
    broken.write_text("{not json")

    out = tmp_path / "grades"
    assert (
        g.main([str(p) for p in (solved, unsolved, raises, hangs, broken)] + ["--timeout", "5", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out

    with (out / "grades.csv").open() as f:
        table = {row["student"]: row for row in csv.DictReader(f)}
    assert list(table) == ["alice", "bob", "carol", "dave", "erin"]
    assert table["alice"]["run"] == "ok" and table["alice"]["passed"] == "1/2"
    assert table["alice"]["exercise 1"] == "pass" and table["alice"]["exercise 2"] == "not yet: set other"
    assert table["bob"]["exercise 1"] == "not yet: answer is not 42"
    assert table["carol"]["run"] == "error: cell 1: ValueError: my bad"  # and the cells after it still ran:
    assert table["carol"]["exercise 1"] == "pass"
    assert table["dave"]["run"] == "timeout: over 5 s in cell 0" and table["dave"]["passed"] == "0/2"
    assert table["dave"]["exercise 1"].startswith("not run") and table["dave"]["exercise 2"].startswith("not run")
    assert table["erin"]["run"].startswith("failed: cannot read the notebook")
    assert float(table["dave"]["seconds"]) < 60

    md = (out / "grades.md").read_text()
    assert md == printed and md.splitlines()[0].startswith("| student | lab | run | passed |")
    assert len(md.splitlines()) == 2 + 5
    executed = nbformat.read(out / "executed" / "lab" / "alice" / "lab.ipynb", as_version=4)
    assert "exercise 1 pass: 42" in executed.cells[2].outputs[0]["text"]


def test_the_command_line_refuses_missing_notebooks_and_a_bad_timeout(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        g.main([str(tmp_path / "nope.ipynb")])
    assert exit.value.code == 2 and "no such notebook" in capsys.readouterr().err
    nb = _notebook(tmp_path / "x.ipynb", CHECK)
    with pytest.raises(SystemExit):
        g.main([str(nb), "--timeout", "0"])
    assert "--timeout must be positive" in capsys.readouterr().err


def test_every_lab_has_checks_grade_can_read():
    for path in sorted(LAB1.parent.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = g.check_cells(nb)
        assert cells, f"{path.name} has no cell tagged exercise-check"
        assert all(g.NAMED_IN_SOURCE.search(nb.cells[i].source) for i in cells), path.name
        assert g.lab_name(nb, path) == path.stem


SOLUTIONS = {
    "def epochs(": """
def epochs(weight, total_tokens, dataset_tokens):
    return weight * total_tokens / dataset_tokens


wiki = llama.set_index("source").loc["Wikipedia"]
llama2_wikipedia_epochs = epochs(wiki.weight, 2e12, wiki.dataset_tokens_B * 1e9)
""",
    "my_example = None": """
TARGET_LOSS_TOKENS = 10
my_example = {"instruction": "Answer briefly.", "input": "", "output": "Positive: it works well and ships fast."}
""",
}


@pytest.mark.slow
def test_grading_lab_1_as_shipped_and_solved(tmp_path):
    shipped = tmp_path / "bob" / "01_tokens.ipynb"
    shipped.parent.mkdir()
    shutil.copy(LAB1, shipped)
    nb = nbformat.read(LAB1, as_version=4)
    filled = 0
    for cell in nb.cells:
        for marker, solution in SOLUTIONS.items():
            if cell.cell_type == "code" and cell.source.startswith("# your turn") and marker in cell.source:
                cell.source, filled = "# your turn" + solution.rstrip(), filled + 1
    assert filled == 2
    solved = tmp_path / "alice" / "01_tokens.ipynb"
    solved.parent.mkdir()
    nbformat.write(nb, solved)

    results = g.grade([solved, shipped], timeout=600, out=tmp_path / "grades")
    alice, bob = results
    assert (alice.student, alice.lab, alice.status, bob.student, bob.status) == (
        "alice",
        "01_tokens",
        "ok",
        "bob",
        "ok",
    )
    assert [(e.name, e.status) for e in alice.exercises.values()] == [("1", "pass"), ("2", "pass")]
    assert alice.exercises["1"].message.startswith("3.50 epochs")
    assert [(e.name, e.status) for e in bob.exercises.values()] == [("1", "not yet"), ("2", "not yet")]
    assert bob.exercises["1"].message.startswith("epochs() returns None")
    assert bob.exercises["2"].message.startswith("set my_example")
    md = (tmp_path / "grades" / "grades.md").read_text()
    assert "| alice | 01_tokens | ok | 2/2 |" in md and "| bob | 01_tokens | ok | 0/2 |" in md
