"""How long a pool pauses after a 429 or 418: one immutable settings object (like urllib3's
`Retry`) so every caller computes the same pause from the same inputs."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Pause = the server's wait (Retry-After, else `default_retry_after_s`) plus, from the
    second consecutive failure on, a full-jitter backoff `uniform(0, min(cap, base * 2**(n-2)))`
    so that bots sharing an IP do not all come back at the same instant. Capped at
    `max_pause_s` (Binance bans last up to 3 days)."""

    default_retry_after_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    max_pause_s: float = 3 * 86400.0

    def __post_init__(self) -> None:
        if min(self.default_retry_after_s, self.backoff_base_s, self.backoff_cap_s) < 0:
            raise ValueError("retry policy times must not be negative")

    def backoff_bound(self, streak: int) -> float:
        """Upper bound of the jitter for the `streak`-th consecutive failure (1 = first)."""
        if streak <= 1:
            return 0.0
        exponent = min(streak - 2, 62)
        return min(self.backoff_cap_s, self.backoff_base_s * (2.0**exponent))

    def pause_seconds(
        self, retry_after_s: float | None, streak: int, rng: random.Random | None = None
    ) -> float:
        server_wait = self.default_retry_after_s if retry_after_s is None else retry_after_s
        jitter = (rng or random).uniform(0.0, self.backoff_bound(streak))
        return min(self.max_pause_s, max(0.0, server_wait) + jitter)
