"""The RAG explorer: type a question, see the retrieved chunks as cards with scores, sources
and matched terms. Every retrieved text is HTML-escaped before it reaches the page."""

from __future__ import annotations

import html

import ipywidgets as w

from ..errors import NbllmError
from ..retrieval.store import server_errors


class RAGExplorer(w.VBox):
    """Query box, k slider, distance, strategy, rewrite, hybrid/rerank/compress/answer toggles and result cards.

    Searches when the query is submitted (Enter) or any control changes; `search()` does the
    same from code and returns the RAGResult."""

    def __init__(self, collection: str = "default", k: int = 4, model=None, persist=None, server=None, store=None):
        kind = store
        from ..retrieval import store

        col = store.get_collection(collection, persist, server, kind)
        meta = store.info(col)
        total, built = col.count(), meta.get("distance", "l2")
        strategy = meta.get("strategy", "direct")  # a collection serves its own strategy, or direct
        self.collection, self.model, self.persist, self.server, self.store = collection, model, persist, server, kind
        self.query = w.Text(
            placeholder="ask a question and press Enter",
            description="question",
            continuous_update=False,
            layout=w.Layout(width="100%"),
        )
        self.query.add_class("nbllm-rag-query")
        self.k = w.IntSlider(
            value=min(k, max(total, 1)),
            min=1,
            max=max(1, min(total, 20)),
            description="k",
            layout=w.Layout(width="280px", min_width="220px"),
        )
        self.distance = w.Dropdown(options=["l2", "ip", "cosine"], value=built, description="distance")
        self.strategy = w.Dropdown(
            options=sorted({"direct", strategy}), value=strategy, description="strategy", disabled=strategy == "direct"
        )
        self.rewrite = w.Dropdown(options=["none", "multi-query", "hyde"], value="none", description="rewrite")
        self.hybrid = w.Checkbox(value=False, description="hybrid (BM25 + dense)", indent=False)
        self.rerank = w.Checkbox(value=False, description="rerank", indent=False)
        self.compress = w.Checkbox(value=False, description="compress", indent=False)
        self.answer = w.Checkbox(value=False, description="answer", indent=False)
        self.status = w.HTML(
            f"<small>collection <code>{html.escape(collection)}</code>: {total} chunks, "
            f"built with {html.escape(built)} distance (others are exact brute force)"
            + (f" and the {html.escape(strategy)} strategy" if strategy != "direct" else "")
            + "</small>"
        )
        self.results = w.HTML("")
        self.result = None
        controls = w.HBox(
            [self.k, self.distance, self.strategy, self.rewrite, self.hybrid, self.rerank, self.compress, self.answer],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        super().__init__([self.query, controls, self.status, self.results])
        self.add_class("nbllm-rag-explorer")
        self.query.observe(self._changed, names="value")
        for control in controls.children:
            control.observe(self._changed, names="value")

    def _changed(self, _change=None) -> None:
        if self.query.value.strip():
            self.search()

    def search(self, question: str | None = None):
        from .. import rag
        from ..retrieval.results import RAGResult, hit_card
        from ..retrieval.search import matched_terms

        if question is not None:
            with self.hold_trait_notifications():
                self.query.value = question
        text = self.query.value.strip()
        try:
            res = rag.query(
                text,
                self.collection,
                k=self.k.value,
                model=self.model,
                generate=self.answer.value,
                hybrid=self.hybrid.value,
                rerank=self.rerank.value,
                distance=self.distance.value,
                strategy=self.strategy.value,
                rewrite=None if self.rewrite.value == "none" else self.rewrite.value,
                compress=self.compress.value,
                persist=self.persist,
                server=self.server,
                store=self.store,
            )
        except NbllmError as err:
            self.results.value = f"<p style='color:#b00'>{html.escape(f'{type(err).__name__}: {err}')}</p>"
            return None
        assert isinstance(res, RAGResult)
        cited = set(res.cited)
        cards = "".join(hit_card(n, h, matched_terms(text, h["text"]), n in cited) for n, h in enumerate(res._hits, 1))
        notices = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in res.notices)
        answer = (
            f"<div class='nbllm-answer'><b>Answer</b><p>{html.escape(res.cited_answer)}</p></div>"
            if res.answer is not None
            else ""
        )
        self.results.value = f"{notices}{cards}{answer}"
        self.result = res
        return res

    def __repr__(self) -> str:  # console / nbval text: stable
        shown = f"collection={self.collection!r}, k={self.k.value}, distance={self.distance.value!r}"
        if self.strategy.value != "direct":
            shown += f", strategy={self.strategy.value!r}"
        return f"RAGExplorer({shown})"


@server_errors
def explore(
    collection: str = "default", *, k: int = 4, model=None, persist=None, server=None, store=None
) -> RAGExplorer:
    """The RAG explorer widget over a collection (what %rag explore shows), on any store."""
    kind = store
    from ..retrieval import store

    from ..errors import ConfigError

    persist, server, kind = store.location(collection, persist, server, kind)
    store.get_collection(collection, persist, server, kind)
    if not isinstance(k, int) or not 1 <= k <= 20:  # the slider; a k above the collection's size shows it all
        raise ConfigError(f"--k {k} is outside the explorer's slider (1 to 20); pass --k between them")
    return RAGExplorer(collection, k=k, model=model, persist=persist, server=server, store=kind)
