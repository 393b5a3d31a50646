"""Option dataclasses. Each magic flag maps to one field; __post_init__ names bad values."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

TEMPLATES = ("auto", "alpaca", "chat", "none")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")


def _check_positive(name: str, value: float | int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{name} must be > 0 (got {value!r})")


class JsonConfig:
    """Round-trip a config dataclass to JSON (saved beside checkpoints)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


@dataclass
class TokenizeConfig(JsonConfig):
    model: str = field(default="smollm2", metadata={"help": "registered model name, local path or hub id"})
    template: str = field(default="auto", metadata={"help": "alpaca | chat | none | auto (from the example's keys)"})
    max_length: int | None = field(default=None, metadata={"help": "truncate to this many tokens"})
    train_on_prompt: bool = field(default=False, metadata={"help": "count prompt tokens in the loss too"})

    def __post_init__(self):
        _check_choice("template", self.template, TEMPLATES)
        _check_positive("max_length", self.max_length, allow_none=True)
