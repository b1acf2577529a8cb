"""How long a pool pauses after a 429 or 418: one immutable settings object (like urllib3's
`Retry`) so every caller computes the same pause from the same inputs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

# The longest any pause ratekit honours may last, whoever asks for it (an exchange's 418, a
# CoinGecko Retry-After): Binance bans last "from 2 minutes to 3 days" (Binance spot API docs,
# "LIMITS", read 2026-11). A longer Retry-After is a broken header, not a reason to stop for years.
MAX_PAUSE_S = 3 * 86400.0


@dataclass(frozen=True)
class RetryPolicy:
    """Pause = the server's wait (Retry-After, else `default_retry_after_s`) plus, from the
    second consecutive failure on, a full-jitter backoff `uniform(0, min(cap, base * 2**(n-2)))`
    so that bots sharing an IP do not all come back at the same instant. Capped at
    `max_pause_s` (Binance bans last up to 3 days)."""

    default_retry_after_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    max_pause_s: float = MAX_PAUSE_S

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"retry policy {spec.name} must be a finite number of seconds >= 0, "
                    f"got {value!r}"
                )

    def backoff_bound(self, streak: int) -> float:
        """Upper bound of the jitter for the `streak`-th consecutive failure (1 = first)."""
        if streak <= 1:
            return 0.0
        exponent = min(streak - 2, 62)
        return min(self.backoff_cap_s, self.backoff_base_s * (2.0**exponent))

    def pause_seconds(
        self, retry_after_s: float | None, streak: int, rng: random.Random | None = None
    ) -> float:
        """Always finite, within [0, max_pause_s]: a NaN server wait counts as absent, an
        infinite one as the longest pause."""
        if retry_after_s is None or math.isnan(retry_after_s):
            server_wait = self.default_retry_after_s
        else:
            server_wait = min(max(0.0, retry_after_s), self.max_pause_s)
        jitter = (rng or random).uniform(0.0, self.backoff_bound(streak))
        return min(self.max_pause_s, server_wait + jitter)


def clamp_pause(seconds: float) -> float:
    """`seconds` as a pause ratekit may honour: NaN and negatives are 0, the rest is capped at
    `MAX_PAUSE_S` (for pauses that do not come through a `RetryPolicy`, e.g. a usage
    header's reset time)."""
    if math.isnan(seconds) or seconds <= 0:
        return 0.0
    return min(seconds, MAX_PAUSE_S)
