"""LLM-as-judge: a model rates each response 0-100, the replies are cached on disk.

The judge is a registered model (or a variable holding one), or any OpenAI-compatible
chat endpoint (base URL + model name + API key read from an environment variable). Every
reply is stored in a SQLite file under the nbllm cache, keyed by a hash of (judge, prompt),
so a rerun reads the cache and neither loads the judge nor calls the endpoint. Replies
without a number from 0 to 100 are counted as unparsable and shown, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ConfigError, DataError, ModelError
from .common import check_limit, load_eval_records, resolve_model

PROMPT_WITH_REFERENCE = (
    "Given the input `{prompt}` and correct output `{reference}`, score the model response "
    "`{response}` on a scale from 0 to 100, where 100 is the best score. "
    "Respond with the number only."
)
PROMPT = (
    "Given the input `{prompt}`, score the model response `{response}` on a scale from 0 to 100, "
    "where 100 is the best score. Respond with the number only."
)
_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def parse_score(reply: str) -> float | None:
    """The first number in a reply if it lies in 0..100 ("85", "Score: 85/100"), else None."""
    found = _NUM.search(str(reply))
    if not found:
        return None
    value = float(found.group())
    return value if 0 <= value <= 100 else None


# ---------------------------------------------------------------- judges


class ModelJudge:
    """A local causal LM as judge; loaded on the first uncached prompt only."""

    def __init__(self, model, max_new_tokens: int = 8):
        self.model, self.max_new_tokens = model, max_new_tokens
        self._loaded = None
        if isinstance(model, str):
            from .. import models

            models.resolve(model)  # an unknown name fails now, not after the cache lookups
            self.name = self.id = model
        else:
            lm, _tok, name = resolve_model(model)
            self.name = name
            self.id = f"{name}@{_fingerprint(lm)}"  # a trained variable: cache per weights, not per name

    def ask(self, prompt: str) -> str:
        from ..lm import resolve

        if self._loaded is None:
            self._loaded = resolve(self.model)
        return self._loaded.generate(prompt, max_new_tokens=self.max_new_tokens)[0]  # under the judge's template


def _fingerprint(model) -> str:
    import torch

    with torch.no_grad():
        total = sum(float(p.double().abs().sum()) for p in model.parameters())
    return hashlib.sha256(repr(round(total, 6)).encode()).hexdigest()[:12]


class EndpointJudge:
    """An OpenAI-compatible /chat/completions endpoint (urllib; temperature 0)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_tokens: int = 16,
    ):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"judge URL must start with http:// or https:// (got {base_url!r})")
        if not model:
            raise ConfigError("an endpoint judge needs a model name: --judge NAME --judge-url URL")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.max_tokens = model, timeout, max_tokens
        self.key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not self.key:
            raise ConfigError(
                f"environment variable {api_key_env} is not set; export the API key there "
                "(or --api-key-env none for an endpoint without a key)"
            )
        self.name = model
        self.id = f"{model}@{base_url.rstrip('/')}"

    def ask(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode())
        except urllib.error.HTTPError as err:
            raise ModelError(
                f"judge endpoint {self.url} answered HTTP {err.code}; check the URL, model name and "
                "API key (judgements so far are cached)"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise ModelError(
                f"cannot reach judge endpoint {self.url} ({getattr(err, 'reason', err)}); "
                "judgements so far are cached, rerun when it is up"
            ) from None
        except ValueError:
            raise ModelError(f"judge endpoint {self.url} did not return JSON") from None
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ModelError(f"judge endpoint {self.url} returned no choices[0].message.content") from None


def make_judge(judge, url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY"):
    if hasattr(judge, "ask") and hasattr(judge, "id"):
        return judge
    if url:
        return EndpointJudge(url, judge, api_key_env)
    if judge is None:
        raise ConfigError("no judge given; pass --judge MODEL (e.g. smollm2) or --judge NAME --judge-url URL")
    return ModelJudge(judge)


# ---------------------------------------------------------------- cache


class JudgeCache:
    """(judge id, prompt) -> reply, in one SQLite file; safe to share between processes."""

    def __init__(self, path: str | Path | None = None):
        from .. import models

        self.path = Path(path) if path else models.cache_dir() / "judge_cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, judge TEXT, reply TEXT)")

    def _connect(self):
        return sqlite3.connect(self.path, timeout=30)

    @staticmethod
    def key(judge_id: str, prompt: str) -> str:
        return hashlib.sha256(json.dumps([judge_id, prompt]).encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, str]:
        found = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk).fetchall())
        return found

    def put(self, key: str, judge_id: str, reply: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?)", (key, judge_id, reply))


# ---------------------------------------------------------------- items


def _text(rec: dict, keys, i: int, what: str, required: bool = True):
    for key in keys:
        if isinstance(rec.get(key), str) and rec[key].strip():
            return rec[key]
    if required:
        raise DataError(f"record {i} has no {what} ({' / '.join(keys)}); keys: {', '.join(map(str, rec)) or 'none'}")
    return None


def items_from(records: list[dict], default_model: str = "responses") -> list[dict]:
    """One item per (record, response): records carry "response" (and optionally "model"), or
    "responses": {model: text} to judge several models on the same prompts."""
    items = []
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise DataError(f"record {i} is a {type(rec).__name__}, not an object with prompt and response")
        prompt = _text(rec, ("prompt", "instruction", "question"), i, "prompt")
        if isinstance(rec.get("input"), str) and rec["input"].strip():
            prompt = f"{prompt}\n\n{rec['input']}"
        reference = _text(rec, ("reference", "output", "answer"), i, "reference", required=False)
        if isinstance(rec.get("responses"), dict) and rec["responses"]:
            pairs = list(rec["responses"].items())
        else:
            pairs = [
                (
                    rec.get("model", default_model),
                    _text(rec, ("response", "model_response", "prediction"), i, "response"),
                )
            ]
        for model, response in pairs:
            items.append(
                {
                    "id": rec.get("id", i - 1),
                    "model": str(model),
                    "prompt": prompt,
                    "response": str(response),
                    "reference": reference,
                }
            )
    return items


def judge_prompt(item: dict, template: str | None = None) -> str:
    template = template or (PROMPT_WITH_REFERENCE if item["reference"] else PROMPT)
    return template.format(prompt=item["prompt"], response=item["response"], reference=item["reference"] or "")


def evaluate(
    data,
    judge="smollm2",
    *,
    url: str | None = None,
    api_key_env: str | None = "OPENAI_API_KEY",
    template: str | None = None,
    limit: int | None = None,
    cache: bool = True,
    cache_path: str | Path | None = None,
    progress: bool = True,
    name: str | None = None,
    label: str | None = None,
):
    """Score each response 0-100 with a judge; returns a JudgeResult (mean with a 95% interval,
    unparsable replies counted). Replies are cached per (judge, prompt)."""
    from tqdm.auto import tqdm

    from ..provenance import attach, flags_of
    from .leaderboard import record

    flags = flags_of(locals())
    from .results import JudgeResult

    check_limit(limit)
    records = load_eval_records(data)
    if not records:
        raise DataError("nothing to judge: the data is empty")
    items = items_from(records[:limit] if limit else records, name or "responses")
    judge = make_judge(judge, url, api_key_env)
    store = JudgeCache(cache_path) if cache else None
    prompts = [judge_prompt(it, template) for it in items]
    keys = [JudgeCache.key(judge.id, p) for p in prompts]
    known = store.get_many(keys) if store else {}
    rows = []
    for item, prompt, key in tqdm(
        list(zip(items, prompts, keys)), desc=f"judge {judge.name}", disable=not progress, leave=False
    ):
        cached = key in known
        reply = known[key] if cached else judge.ask(prompt)
        if store and not cached:
            store.put(key, judge.id, reply)  # written at once: an interrupted run loses nothing
        rows.append({**item, "reply": reply, "score": parse_score(reply), "cached": cached})
    result = JudgeResult(judge.name, label or (data if isinstance(data, str) else "data"), rows)
    weights = judge.model if isinstance(judge, ModelJudge) and not isinstance(judge.model, str) else None
    attach(result, model=weights, name=judge.name, data=records[:limit] if limit else records, flags=flags)
    record(result)
    return result
