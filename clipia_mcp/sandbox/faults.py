"""Fault injection: switchable per route, per nth call, or by seeded probability.

Source: API contract, shared/reference/clipia-api.md §17.10.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["error", "drop", "delay", "stale_result", "html"]
ROUTES = ("submit", "status", "result", "models", "model", "estimate", "account", "*")


@dataclass
class Fault:
    """One fault rule.

    ``kind``:
      * ``error``: answer ``status`` with the envelope ``code`` (nothing is processed);
      * ``html``: answer ``status`` with a non-JSON HTML body (gateway style);
      * ``drop``: process the call, then break the connection mid-response (lost response);
      * ``delay``: process the call, then wait ``seconds`` before answering (slow response);
      * ``stale_result``: the result endpoint answers 202 although the request is terminal.
    ``after`` skips that many matching calls first; ``times`` limits how many calls are hit
    (``None`` = every one); ``probability`` < 1 hits at random with the emulator's seeded RNG.
    """

    route: str = "*"
    kind: FaultKind = "error"
    status: int = 500
    code: str = "internal_error"
    message: str = "Internal error. Please retry."
    retry_after: str | None = None
    seconds: float = 0.0
    times: int | None = 1
    after: int = 0
    probability: float = 1.0
    seen: int = field(default=0, repr=False)
    hits: int = field(default=0, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("seen", "hits")}
        fault = cls(**allowed)
        if fault.route not in ROUTES:
            raise ValueError(f"unknown route {fault.route!r}; one of {ROUTES}")
        if fault.retry_after is not None:
            fault.retry_after = str(fault.retry_after)
        return fault

    def matches(self, route: str, rng: random.Random) -> bool:
        if self.route not in ("*", route):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.hits += 1
        return True


class FaultBook:
    """The active fault rules, in order; the first match wins."""

    def __init__(self, seed: int = 0) -> None:
        self.rules: list[Fault] = []
        self.rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, route: str) -> Fault | None:
        for rule in self.rules:
            if rule.matches(route, self.rng):
                return rule
        return None
