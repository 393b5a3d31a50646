"""The arena voting widget in a real JupyterLab: real clicks on its buttons, votes read back, ratings.

Run: .venv/bin/python -m pytest tests/browser -m browser -q   (screenshots land in build/screenshots/)
"""

import json

import pytest

from labserver import run_cell
from test_jupyterlab import SHOTS, _chromium_or_skip, _notebook, _shot_on_failure, served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# an answer that would run script if the widget put it into the page as HTML
XSS = '<img src=x onerror="window.__pwned = 1; alert(1)"> <script>window.__pwned = 2; alert(2)</script>'
BATTLES = [
    {"prompt": "Name a primary colour. <b>not bold</b>", "responses": {"alpha": "Red.", "beta": XSS}},
    {"prompt": "What is 2 + 2?", "responses": {"alpha": "4", "beta": "5"}},
    {"prompt": "What is the capital of France?", "responses": {"alpha": "Paris.", "beta": "Lyon."}},
    {"prompt": "Say hello in Spanish.", "responses": {"alpha": "Hola.", "beta": "Bonjour."}},
]
# per battle, in order: (the winner the vote must record, the button clicked, double click?); the second
# click of a double click must not vote on the next battle, which the voter has not read
CLICKS = [
    ("a", ".nbllm-vote-a", False),
    ("b", ".nbllm-vote-b", True),
    ("tie", ".nbllm-vote-tie", False),
    ("both_bad", ".nbllm-vote-bad", False),
]
READ_BACK = """import json
rows = [json.loads(line) for line in open("votes.jsonl", encoding="utf-8")]
for row in rows:
    print(json.dumps(row, sort_keys=True))
print("same in memory:", rows == arena.votes)"""
CELLS = (
    "%load_ext nbllm",
    f"battles = {BATTLES!r}",
    "%eval arena --widget --battles battles --votes votes.jsonl --seed 0 --out arena",
    READ_BACK,
    "%eval arena --votes votes.jsonl --rounds 50",
)
TIMEOUT = 60_000
READ_MS = 1000  # > the widget's READ_SECONDS


def _votes(n: int) -> str:
    return f"{n} vote" + ("" if n == 1 else "s")


@pytest.fixture(scope="module")
def arena_lab(tmp_path_factory):
    _chromium_or_skip()
    root = tmp_path_factory.mktemp("arena")
    _notebook(root / "arena.ipynb", *CELLS)
    with served(root) as server:
        yield server


def test_arena_widget_records_real_clicks(arena_lab):
    from playwright.sync_api import expect

    page = arena_lab.open(arena_lab.chromium, "arena.ipynb")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with _shot_on_failure(page, "arena_widget"):
        for i in range(2):
            run_cell(page, i)
        widget = run_cell(page, 2).locator(".nbllm-arena")
        widget.wait_for(timeout=TIMEOUT)
        prompt, status = widget.locator(".nbllm-arena-prompt"), widget.locator(".nbllm-arena-status")

        clicked = []
        for i, (battle, (winner, button, double)) in enumerate(zip(BATTLES, CLICKS)):
            # the widget shows this battle, prompt and answers as plain text (markup included)
            expect(prompt).to_contain_text(f"Prompt {i + 1}/{len(BATTLES)}: {battle['prompt']}", timeout=TIMEOUT)
            expect(status).to_contain_text(f"{_votes(i)} saved to votes.jsonl", timeout=TIMEOUT)
            shown = [widget.locator(f".nbllm-arena-{side}").inner_text().strip() for side in "ab"]
            model_of = {text: model for model, text in battle["responses"].items()}
            assert sorted(shown) == sorted(model_of), shown
            model_a, model_b = model_of[shown[0]], model_of[shown[1]]
            if i == 0:
                assert XSS in shown
                widget.scroll_into_view_if_needed()
                widget.screenshot(path=str(SHOTS / "arena_widget.png"))

            page.wait_for_timeout(READ_MS)  # a reader's pause: a click sooner after the battle appears is dropped
            widget.locator(button).dblclick() if double else widget.locator(button).click()
            clicked.append({"model_a": model_a, "model_b": model_b, "prompt_id": i, "winner": winner})
            # the next battle comes up and the names of the one just voted on are revealed
            expect(status).to_contain_text(
                f"{_votes(i + 1)} saved to votes.jsonl. That was A = {model_a}, B = {model_b}.", timeout=TIMEOUT
            )

        expect(prompt).to_contain_text(f"All {len(BATTLES)} battles voted", timeout=TIMEOUT)
        for _, button, _ in CLICKS:
            expect(widget.locator(button)).to_be_disabled(timeout=TIMEOUT)
        widget.screenshot(path=str(SHOTS / "arena_done.png"))
        assert {v["model_a"] for v in clicked} == {"alpha", "beta"}, "the seeded order never swapped A and B"

        # the kernel recorded exactly the clicks: the JSONL file and the widget's .votes
        printed = run_cell(page, 3).locator(".jp-OutputArea-output").inner_text().strip().splitlines()
        assert [json.loads(line) for line in printed[:-1]] == clicked
        assert printed[-1] == "same in memory: True"
        on_disk = (arena_lab.root_dir / "votes.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in on_disk] == clicked

        # %eval arena turns the file into a ratings table
        ratings = run_cell(page, 4).locator(".jp-OutputArea-output")
        rows = ratings.locator("table tbody tr")
        expect(rows).to_have_count(2, timeout=TIMEOUT)
        assert ratings.locator("code").inner_text() == f"ArenaResult({len(clicked)} votes, 2 models)"
        columns = [c.strip() for c in ratings.locator("table thead th").all_inner_texts()]
        table = {}
        for r in range(2):
            cells = [c.strip() for c in rows.nth(r).locator("td").all_inner_texts()]
            table[cells[0]] = dict(zip(columns, cells))
        assert sorted(table) == ["alpha", "beta"]
        for model, row in table.items():  # games and win rates follow from the clicks
            score = [
                {"a": 1.0, "b": 0.0}.get(v["winner"], 0.5)
                if v["model_a"] == model
                else {"a": 0.0, "b": 1.0}.get(v["winner"], 0.5)
                for v in clicked
            ]
            assert int(row["games"]) == len(clicked), row
            assert float(row["win_rate"]) == pytest.approx(sum(score) / len(score), abs=1e-3), row
            assert float(row["bt_low"]) <= float(row["bt"]) <= float(row["bt_high"]), row
        assert ratings.locator("img").count() == 1  # the rating plot
        ratings.screenshot(path=str(SHOTS / "arena_ratings.png"))

        # the <img onerror> and <script> answer showed as text and nothing of it ran
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []
    page.close()
