"""What several bots share so that one CoinGecko call serves them all: prices and the coin list.

Apart from the converter so that a store can be swapped (in memory for one process, Redis for
several) without touching the refresh logic; `is_recent` is the one freshness rule for
timestamps other bots wrote.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from freqtrade_ratekit.fiat.coin_list import CoinList, coin_list_document, parse_coin_list_document
from freqtrade_ratekit.fiat.coingecko import is_price

# A timestamp (coin list, shared price) at most this far ahead of our clock is another host's
# clock skew and counts as "just now"; one further ahead is not trusted to be fresh, or a
# future `fetched_at` would mean "never refresh".
MAX_CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class SharedPrice:
    price: float
    fetched_at: float  # wall-clock seconds of the bot that fetched it


class SharedFiatStore(Protocol):
    """What several bots share so that one CoinGecko call serves them all.

    Prices are keyed `"<gecko id>/<vs currency>"`. `try_lock` is a lease, not a mutex: it is
    never released, it expires after `ttl` seconds, so it also limits calls per period.
    """

    def get_prices(self, keys: Collection[str]) -> dict[str, SharedPrice]: ...

    def put_prices(self, prices: Mapping[str, SharedPrice]) -> None: ...

    def get_coin_list(self) -> CoinList | None: ...

    def put_coin_list(self, coin_list: CoinList) -> None: ...

    def try_lock(self, name: str, ttl: float) -> bool: ...


class InMemoryFiatStore:
    """A `SharedFiatStore` for bots in one process (and for tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._prices: dict[str, SharedPrice] = {}
        self._coin_list: CoinList | None = None
        self._leases: dict[str, float] = {}

    def get_prices(self, keys: Collection[str]) -> dict[str, SharedPrice]:
        with self._lock:
            return {key: self._prices[key] for key in keys if key in self._prices}

    def put_prices(self, prices: Mapping[str, SharedPrice]) -> None:
        with self._lock:
            self._prices.update(prices)

    def get_coin_list(self) -> CoinList | None:
        with self._lock:
            return self._coin_list

    def put_coin_list(self, coin_list: CoinList) -> None:
        with self._lock:
            self._coin_list = coin_list

    def try_lock(self, name: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._leases.get(name, 0.0) > now:
                return False
            self._leases[name] = now + ttl
            return True


class RedisFiatStore:
    """A `SharedFiatStore` on Redis (redis-py client, `decode_responses` either way).

    Keys: `<prefix>prices` (hash of key → JSON [price, fetched_at]), `<prefix>coins_list`
    (JSON), `<prefix>lock:<name>` (SET NX PX lease). Everything expires after a week unused.
    """

    RETENTION_SECONDS = 7 * 24 * 3600

    def __init__(self, redis_client: Any, prefix: str = "ratekit:fiat:") -> None:
        self._redis = redis_client
        self._prefix = prefix

    def get_prices(self, keys: Collection[str]) -> dict[str, SharedPrice]:
        ordered = list(keys)
        if not ordered:
            return {}
        raw = self._redis.hmget(f"{self._prefix}prices", ordered)
        prices = {}
        for key, value in zip(ordered, raw, strict=True):
            with suppress(ValueError, TypeError, RecursionError):
                price, fetched_at = json.loads(value)
                if is_price(price) and is_price(fetched_at):
                    prices[key] = SharedPrice(float(price), float(fetched_at))
        return prices

    def put_prices(self, prices: Mapping[str, SharedPrice]) -> None:
        if not prices:
            return
        name = f"{self._prefix}prices"
        encoded = {key: json.dumps([p.price, p.fetched_at]) for key, p in prices.items()}
        pipe = self._redis.pipeline()
        pipe.hset(name, mapping=encoded)
        pipe.expire(name, self.RETENTION_SECONDS)
        pipe.execute()

    def get_coin_list(self) -> CoinList | None:
        raw = self._redis.get(f"{self._prefix}coins_list")
        if raw is None:
            return None
        try:
            return parse_coin_list_document(json.loads(raw), default_fetched_at=None)
        except (ValueError, TypeError, RecursionError):
            return None

    def put_coin_list(self, coin_list: CoinList) -> None:
        self._redis.set(
            f"{self._prefix}coins_list",
            coin_list_document(coin_list),
            ex=self.RETENTION_SECONDS,
        )

    def try_lock(self, name: str, ttl: float) -> bool:
        lease_ms = max(1, int(ttl * 1000))
        return bool(self._redis.set(f"{self._prefix}lock:{name}", "1", nx=True, px=lease_ms))


def is_recent(fetched_at: float, now: float, max_age: float) -> bool:
    """Whether data fetched at `fetched_at` is younger than `max_age` at `now`. A time in the
    future beyond `MAX_CLOCK_SKEW` is not recent: it is a broken clock or a broken file."""
    age = now - fetched_at
    return -MAX_CLOCK_SKEW <= age < max_age
