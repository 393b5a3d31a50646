"""The arena voting widget: a prompt, two anonymous answers, four vote buttons.

Each battle shows two models' answers in a seeded random order as "A" and "B"; a click
appends {"model_a", "model_b", "winner", "prompt_id"} to a JSONL file (model_a is whoever was
shown as A), reveals the two names and moves to the next battle. `%eval arena --votes FILE`
then turns the file into ratings. A click within READ_SECONDS of a battle appearing is dropped:
nobody reads two answers that fast, but the second click of a slow double click lands there.
CSS classes for browser tests: root `nbllm-arena`, buttons
`nbllm-vote-a`, `nbllm-vote-b`, `nbllm-vote-tie`, `nbllm-vote-bad`; text `nbllm-arena-prompt`,
`nbllm-arena-a`, `nbllm-arena-b`, `nbllm-arena-status`.
"""

from __future__ import annotations

import html
import json
import random
import time
from pathlib import Path

from ..errors import DataError

BUTTONS = (
    ("a", "A is better", "nbllm-vote-a"),
    ("b", "B is better", "nbllm-vote-b"),
    ("tie", "Tie", "nbllm-vote-tie"),
    ("both_bad", "Both are bad", "nbllm-vote-bad"),
)
READ_SECONDS = 0.6  # longer than a desktop's double-click interval (0.5 s by default)


def check_battles(battles) -> list[dict]:
    from ..evaluate.common import load_eval_records

    records = battles if isinstance(battles, list) else load_eval_records(battles, "battles")
    if not records:
        raise DataError("no battles: give records {prompt, responses: {model: answer}} with at least two models")
    for i, rec in enumerate(records, 1):
        responses = rec.get("responses") if isinstance(rec, dict) else None
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("prompt"), str)
            or not isinstance(responses, dict)
            or len(responses) < 2
        ):
            raise DataError(
                f"battle {i} needs a prompt and responses from at least two models: "
                '{"prompt": ..., "responses": {"model-a": ..., "model-b": ...}}'
            )
    return records


class ArenaWidget:
    """Vote on anonymous pairs; votes go to `path` (JSONL, appended) and to `.votes`."""

    def __init__(self, battles, path, seed: int = 0):
        import ipywidgets as w

        self.battles, self.path, self.votes = check_battles(battles), Path(path), []
        if self.path.suffix.lower() != ".jsonl":
            raise DataError(f"votes go to a .jsonl file (got '{path}')")
        rng = random.Random(seed)
        self.order = []  # per battle: (model shown as A, model shown as B)
        for battle in self.battles:
            pair = rng.sample(sorted(battle["responses"]), 2)
            self.order.append((pair[0], pair[1]))
        self.index = 0
        self.prompt = w.HTML()
        self.answer_a, self.answer_b = w.HTML(), w.HTML()
        self.status = w.HTML()
        for part, cls in (
            (self.prompt, "prompt"),
            (self.answer_a, "a"),
            (self.answer_b, "b"),
            (self.status, "status"),
        ):
            part.add_class(f"nbllm-arena-{cls}")
        self.buttons, self._old_buttons, self.controls = [], [], w.HBox()
        columns = w.HBox(
            [
                w.VBox([w.HTML("<b>A</b>"), self.answer_a], layout=w.Layout(width="50%")),
                w.VBox([w.HTML("<b>B</b>"), self.answer_b], layout=w.Layout(width="50%")),
            ]
        )
        self.box = w.VBox([self.prompt, columns, self.controls, self.status])
        self.box.add_class("nbllm-arena")
        self._show()

    @property
    def done(self) -> bool:
        return self.index >= len(self.battles)

    def _new_buttons(self) -> None:
        """Fresh vote buttons for each battle, bound to it: the second click of a double click reaches the
        kernel addressed to the buttons it was made on and is dropped, instead of voting on the next
        battle unread. Buttons two battles old are closed (any click on them has long arrived)."""
        import ipywidgets as w

        for button in self._old_buttons:
            button.close()
        self._old_buttons, self.buttons = self.buttons, []
        for winner, label, cls in BUTTONS:
            button = w.Button(description=label, disabled=self.done)
            button.add_class(cls)
            button.on_click(lambda _b, winner=winner, battle=self.index: self._clicked(winner, battle))
            self.buttons.append(button)
        self.controls.children = tuple(self.buttons)

    def _clicked(self, winner: str, battle: int) -> None:
        if battle == self.index and not self.done and time.monotonic() - self.shown_at >= READ_SECONDS:
            self.vote(winner)

    def _show(self, revealed: str = "") -> None:
        self._new_buttons()
        self.shown_at = time.monotonic()
        if self.done:
            where = html.escape(str(self.path))
            self.prompt.value = f"<p>All {len(self.battles)} battles voted; ratings: %eval arena --votes {where}</p>"
            self.answer_a.value = self.answer_b.value = ""
        else:
            battle = self.battles[self.index]
            a, b = self.order[self.index]
            self.prompt.value = (
                f"<p><b>Prompt {self.index + 1}/{len(self.battles)}:</b> {html.escape(battle['prompt'])}</p>"
            )
            self.answer_a.value = f"<div style='white-space:pre-wrap'>{html.escape(str(battle['responses'][a]))}</div>"
            self.answer_b.value = f"<div style='white-space:pre-wrap'>{html.escape(str(battle['responses'][b]))}</div>"
        n = len(self.votes)
        self.status.value = (
            f"<small>{n} vote{'' if n == 1 else 's'} saved to {html.escape(str(self.path))}. {revealed}</small>"
        )

    def vote(self, winner: str) -> dict:
        """Record a vote for the battle on screen ("a", "b", "tie" or "both_bad") and show the next."""
        if winner not in {w for w, _, _ in BUTTONS}:
            raise DataError(f"winner must be a, b, tie or both_bad (got {winner!r})")
        if self.done:
            raise DataError("every battle has a vote already; make a new widget for more")
        a, b = self.order[self.index]
        vote = {"model_a": a, "model_b": b, "winner": winner, "prompt_id": self.index}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(vote) + "\n")
        self.votes.append(vote)
        self.index += 1
        self._show(f"That was A = {html.escape(a)}, B = {html.escape(b)}.")
        return vote

    def __repr__(self) -> str:
        return f"ArenaWidget(battles={len(self.battles)}, voted={len(self.votes)}, path={str(self.path)!r})"

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.box._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = repr(self)
        return bundle
