"""Background crypto → fiat conversion that never blocks a reader.

Stock Freqtrade asks CoinGecko on the REST request path (`/profit` waits up to 120 s per call,
with retries) and downloads the ~17k-entry coin list at every start. Here readers get the last
known price from memory at once (Freqtrade's 0.0 when none was ever known); one worker thread
refreshes every registered pair with ONE batched `simple/price` call per period, honours 429 +
Retry-After, backs off on other errors, and keeps the coin list on disk between restarts.

Symbol semantics follow `freqtrade/rpc/fiat_convert.py` (2025.12 to 2026.9): lowercase symbol
match against the coin list, the caller's overrides for duplicated symbols, several matches →
unsupported, `crypto == fiat` → 1.0, crypto "usd" answered by inverting fiat→usd (CoinGecko's
"usd" symbol is a token, not the dollar), an unsupported fiat raises ValueError.

This module does not import Freqtrade: the caller passes `SUPPORTED_FIAT` and
`coingecko_mapping` in.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from freqtrade_ratekit.documents import FiatState, RatekitFiat, RatekitFiatPair
from freqtrade_ratekit.fiat.coin_list import CoinList, read_coin_list_file, write_coin_list_file
from freqtrade_ratekit.fiat.coingecko import (
    CoinGeckoClient,
    CoinGeckoError,
    CoinGeckoRateLimited,
    is_price,
)
from freqtrade_ratekit.fiat.store import MAX_CLOCK_SKEW, SharedFiatStore, SharedPrice, is_recent
from freqtrade_ratekit.workers import backoff_ceiling, clamp_pause, full_jitter

logger = logging.getLogger(__name__)

# Least time between two calls the worker makes on its own (a new pair nudges a round; a burst
# of new pairs must not become a burst of calls). 2 s = 30 calls/min, the conservative end of
# CoinGecko's published limits: keyless "10-30/min, varies with traffic"
# (https://coingecko-api.gitbook.io/coingecko-api-guide/getting-started/error-and-rate-limit),
# demo plan 100 calls/min, keyless IP-based and shared
# (https://docs.coingecko.com/docs/errors-and-rate-limits), both read 2026-11-21.
MIN_CALL_INTERVAL = 2.0
# Freqtrade's own converter cache holds 500 pairs; more distinct pairs means a caller bug.
MAX_PAIRS = 500
# The worker re-reads the clock at least this often, so a wall-clock jump cannot stall it.
MAX_IDLE_WAIT = 60.0
# After a shared-store error, act alone this long before trying the store again: a dead Redis
# costs seconds per call (redis-py retries), and a round makes up to six store calls.
STORE_RETRY_INTERVAL = 30.0
_T = TypeVar("_T")


class _CoinIndex:
    def __init__(self, coin_list: CoinList) -> None:
        self.fetched_at = coin_list.fetched_at
        self.entries = len(coin_list.coins)
        self.ids = {coin["id"] for coin in coin_list.coins}
        self.ids_by_symbol: dict[str, list[str]] = defaultdict(list)
        for coin in coin_list.coins:
            self.ids_by_symbol[coin["symbol"].lower()].append(coin["id"])


@dataclass
class _Pair:
    crypto: str
    fiat: str
    gecko_id: str | None = None
    unsupported: bool = False
    attempted: bool = False  # included in a round at least once (nudges stop then)
    price: float | None = None
    fetched_at: float | None = None
    last_error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.crypto}/{self.fiat}"

    @property
    def store_key(self) -> str:
        return f"{self.gecko_id}/{self.fiat}"


@dataclass
class _Calls:
    simple_price: int = 0
    coins_list: int = 0
    errors: int = 0
    status_429: int = 0
    shared_hits: int = 0


@dataclass
class _CoinListState:
    index: _CoinIndex | None = None
    source: str = "none"  # disk | network | shared | none
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    disk_checked: bool = False
    logged: set[str] = field(default_factory=set)


class BackgroundFiatConverter:
    """Drop-in for `CryptoToFiatConverter.get_price` / `convert_amount` that never does I/O on
    the caller's thread. Thread-safe; `start()` the worker, or drive it with `refresh_now()`.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = "",
        is_demo: bool = True,
        refresh_interval: float,
        stale_after: float,
        coin_list_path: Path,
        coin_list_max_age: float,
        supported_fiat: Collection[str],
        symbol_overrides: Mapping[str, str],
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        shared_store: SharedFiatStore | None = None,
        min_call_interval: float = MIN_CALL_INTERVAL,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        for name, value in (
            ("refresh_interval", refresh_interval),
            ("stale_after", stale_after),
            ("coin_list_max_age", coin_list_max_age),
            ("timeout", timeout),
            ("min_call_interval", min_call_interval),
            ("backoff_base", backoff_base),
            ("backoff_cap", backoff_cap),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        self._client = CoinGeckoClient(
            base_url=base_url, api_key=api_key, is_demo=is_demo, timeout=timeout, clock=clock
        )
        self._refresh_interval = refresh_interval
        self._stale_after = stale_after
        self._coin_list_path = Path(coin_list_path)
        self._coin_list_max_age = coin_list_max_age
        self._supported_fiat = frozenset(fiat.upper() for fiat in supported_fiat)
        self._overrides = {sym.lower(): gecko_id for sym, gecko_id in symbol_overrides.items()}
        self._timeout = timeout
        self._clock = clock
        self._store = shared_store
        self._min_call_interval = min_call_interval
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rng = rng or random.Random()

        self._lock = threading.Lock()  # guards all state below; never held during I/O
        self._round_lock = threading.Lock()  # one refresh round at a time
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

        self._pairs: dict[str, _Pair] = {}
        self._coins = _CoinListState()
        self._calls = _Calls()
        self._logged_once: set[str] = set()
        now = clock()
        self._next_round_at = now  # when the worker runs its next round
        self._not_before = now  # earliest call after the last one (backoff, min interval)
        self._paused_until = 0.0  # 429: nothing is sent before this
        self._consecutive_failures = 0
        self._last_refresh_at: float | None = None
        self._store_healthy = True
        self._store_retry_at = 0.0

    # ------------------------------------------------------------------ readers (no I/O)

    def get_price(self, crypto_symbol: str, fiat_symbol: str) -> float:
        """Last known price of `crypto_symbol` in `fiat_symbol`, whatever its age; 0.0 when
        never known (the pair is then fetched in the background soon)."""
        crypto, fiat = crypto_symbol.lower(), fiat_symbol.lower()
        inverse = False
        if crypto == "usd":
            # CoinGecko's "usd" symbol is a token: ask fiat→usd and invert, as Freqtrade does.
            crypto, fiat, inverse = fiat, "usd", True
        if fiat.upper() not in self._supported_fiat:
            raise ValueError(f"The fiat {fiat} is not supported.")
        if crypto == fiat:
            return 1.0
        price = self._price_or_register(crypto, fiat)
        if inverse and price != 0.0:
            price = 1 / price
        return price

    def convert_amount(self, crypto_amount: float, crypto_symbol: str, fiat_symbol: str) -> float:
        if crypto_symbol == fiat_symbol:
            return float(crypto_amount)
        return float(crypto_amount) * self.get_price(crypto_symbol, fiat_symbol)

    def _price_or_register(self, crypto: str, fiat: str) -> float:
        name = f"{crypto}/{fiat}"
        with self._lock:
            pair = self._pairs.get(name)
            if pair is None:
                if len(self._pairs) >= MAX_PAIRS:
                    self._log_once(f"fiat: more than {MAX_PAIRS} pairs, not tracking {name}")
                    return 0.0
                pair = self._pairs[name] = _Pair(crypto, fiat)
                self._next_round_at = min(self._next_round_at, max(self._clock(), self._not_before))
                self._wake.set()
            return pair.price if pair.price is not None else 0.0

    # ------------------------------------------------------------------ worker control

    def start(self) -> None:
        """Start the refresh thread (idempotent). Returns at once: the coin list is loaded
        by the thread itself."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), name="ratekit-fiat", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and wait up to `timeout` s. A call in flight is not interrupted (it
        ends by its own deadline, the client's timeout); the (daemon) thread then exits as soon
        as it returns, without another call."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop_event.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.debug("fiat refresh thread still finishing a CoinGecko call")

    @property
    def is_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def refresh_now(self) -> None:
        """Run one refresh round on the caller's thread, ignoring the schedule and the error
        backoff but not a 429 pause. For tests and tools, never for a reader."""
        with self._round_lock:
            self._run_round()

    def _run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            self._wake.clear()
            with self._lock:
                delay = self._next_round_at - self._clock()
            if delay > 0:
                self._wake.wait(min(delay, MAX_IDLE_WAIT))
                continue
            with self._round_lock:
                if stop_event.is_set():
                    return
                try:
                    self._run_round()
                except Exception:  # a bug must not kill fiat for the bot's lifetime
                    logger.exception("fiat refresh round failed")
                    self._on_failure("internal error (see log)", [])

    # ------------------------------------------------------------------ one round

    def _run_round(self) -> None:
        now = self._clock()
        if self._paused(now):
            return
        self._ensure_coin_list(now)
        if self._paused(self._clock()):
            return
        with self._lock:
            targets = self._resolve_targets()
            if not targets:
                self._schedule(now, self._refresh_interval)
                return
        store = self._store
        if store is not None:
            if self._adopt_shared_prices(store, targets, now):
                with self._lock:
                    self._consecutive_failures = 0
                    self._last_refresh_at = now
                    self._schedule(now, self._refresh_interval)
                return
            lease = self._lease_name(targets)
            lease_ttl = max(self._min_call_interval, self._refresh_interval * 0.9)
            if not self._store_call(lambda: store.try_lock(lease, lease_ttl), True):
                with self._lock:  # another bot is fetching this set; read its result soon
                    self._schedule(now, max(self._min_call_interval, self._timeout))
                return
        self._fetch_prices(targets)

    def _paused(self, now: float) -> bool:
        """True during a 429 pause; the worker then sleeps until it ends."""
        with self._lock:
            if now >= self._paused_until:
                return False
            self._next_round_at = max(self._next_round_at, self._paused_until)
            return True

    def _resolve_targets(self) -> list[_Pair]:
        """Pairs with a gecko id, for this round. Pairs still waiting for the coin list are
        retried with it (not nudged every round). Caller holds `_lock`."""
        targets = []
        for pair in self._pairs.values():
            gecko_id, error = self._resolve(pair.crypto)
            pair.gecko_id = gecko_id
            pair.unsupported = gecko_id is None and self._coins.index is not None
            pair.attempted = True
            if gecko_id is None:
                pair.last_error = error
            else:
                targets.append(pair)
        return targets

    def _resolve(self, symbol: str) -> tuple[str | None, str | None]:
        """(gecko id, None) or (None, why). Caller holds `_lock`."""
        override = self._overrides.get(symbol)
        index = self._coins.index
        if index is None:
            # Overrides are known CoinGecko ids: usable before the coin list arrives.
            return (override, None) if override else (None, "coin list not loaded yet")
        if override:
            found = [override] if override in index.ids else []
        else:
            found = index.ids_by_symbol.get(symbol, [])
        if len(found) == 1:
            return found[0], None
        if found:
            self._log_once(f"Found multiple mappings in CoinGecko for {symbol}.")
            return None, f"multiple CoinGecko ids for {symbol.upper()}"
        self._log_once(f"unsupported crypto-symbol {symbol.upper()} - returning 0.0")
        return None, f"unsupported crypto-symbol {symbol.upper()}"

    def _fetch_prices(self, targets: list[_Pair]) -> None:
        ids = sorted({pair.gecko_id for pair in targets if pair.gecko_id})
        vs_currencies = sorted({pair.fiat for pair in targets})
        with self._lock:
            self._calls.simple_price += 1
        try:
            prices = self._client.simple_price(ids, vs_currencies)
        except CoinGeckoRateLimited as exc:
            self._on_rate_limited(exc, targets)
            return
        except CoinGeckoError as exc:
            self._on_failure(str(exc), targets)
            return
        done = self._clock()
        fetched: dict[str, SharedPrice] = {}
        with self._lock:
            for pair in targets:
                price = prices.get(pair.gecko_id or "", {}).get(pair.fiat)
                if price is None:
                    pair.last_error = f"simple/price: no {pair.fiat} price for {pair.gecko_id}"
                    continue
                pair.price, pair.fetched_at, pair.last_error = price, done, None
                fetched[pair.store_key] = SharedPrice(price, done)
        if not fetched:
            self._on_failure("simple/price: none of the requested prices in the response", [])
            return
        with self._lock:
            self._consecutive_failures = 0
            self._last_refresh_at = done
            self._schedule(done, self._refresh_interval)
        store = self._store
        if store is not None:
            self._store_call(lambda: store.put_prices(fetched), None)

    def _adopt_shared_prices(
        self, store: SharedFiatStore, targets: list[_Pair], now: float
    ) -> bool:
        """Take newer prices other bots stored; True when every target is fresh that way."""
        pairs_by_key: dict[str, list[_Pair]] = defaultdict(list)
        for pair in targets:
            pairs_by_key[pair.store_key].append(pair)
        no_prices: dict[str, SharedPrice] = {}
        stored = self._store_call(lambda: store.get_prices(list(pairs_by_key)), no_prices)
        # A price from the future (a skewed or broken peer) is not taken: it would be "fresh"
        # for ever, and no bot would refresh it again.
        shared = {
            key: record
            for key, record in stored.items()
            if is_price(record.price) and record.fetched_at <= now + MAX_CLOCK_SKEW
        }
        with self._lock:
            for key, record in shared.items():
                for pair in pairs_by_key.get(key, []):
                    if pair.fetched_at is None or record.fetched_at > pair.fetched_at:
                        pair.price, pair.fetched_at = record.price, min(record.fetched_at, now)
                        pair.last_error = None
            covered = all(
                key in shared and is_recent(shared[key].fetched_at, now, self._refresh_interval)
                for key in pairs_by_key
            )
            if covered:
                self._calls.shared_hits += 1
        return covered

    @staticmethod
    def _lease_name(targets: Iterable[_Pair]) -> str:
        """One lease per distinct set of prices: bots that want the same set make one call
        per period between them; a bot that wants more still gets its own call."""
        keys = ",".join(sorted({pair.store_key for pair in targets}))
        return "simple_price:" + hashlib.sha256(keys.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ coin list

    def _ensure_coin_list(self, now: float) -> None:
        state = self._coins
        if not state.disk_checked:
            state.disk_checked = True
            self._load_coin_list_from_disk()
        index = state.index
        if index is not None and is_recent(index.fetched_at, now, self._coin_list_max_age):
            return
        if now < state.retry_at:
            return
        store = self._store
        if store is not None:
            shared = self._store_call(store.get_coin_list, None)
            # Ours is missing or stale (or from the future), so a recent shared one is better.
            if shared is not None and is_recent(shared.fetched_at, now, self._coin_list_max_age):
                self._adopt_coin_list(shared, "shared")
                self._save_coin_list(shared)
                return
            lease_ttl = max(30.0, 3 * self._timeout)
            if not self._store_call(lambda: store.try_lock("coins_list", lease_ttl), True):
                with self._lock:
                    state.retry_at = now + max(self._min_call_interval, self._timeout)
                return
        with self._lock:
            self._calls.coins_list += 1
        try:
            coins = self._client.coins_list()
        except CoinGeckoError as exc:
            self._on_coin_list_failure(exc, now)
            return
        coin_list = CoinList(coins=coins, fetched_at=self._clock())
        self._adopt_coin_list(coin_list, "network")
        self._save_coin_list(coin_list)
        if store is not None:
            self._store_call(lambda: store.put_coin_list(coin_list), None)

    def _load_coin_list_from_disk(self) -> None:
        path = self._coin_list_path
        try:
            coin_list = read_coin_list_file(path)
        except ValueError as exc:
            logger.warning("CoinGecko coin list %s is corrupt (%s); fetching a new one", path, exc)
            with self._lock:
                self._coins.last_error = f"corrupt file: {exc}"
            return
        except OSError as exc:
            logger.warning("Cannot read CoinGecko coin list %s: %s", path, exc.strerror)
            return
        if coin_list is not None:
            self._adopt_coin_list(coin_list, "disk")
            logger.info("Loaded CoinGecko coin list (%d coins) from %s", len(coin_list.coins), path)

    def _adopt_coin_list(self, coin_list: CoinList, source: str) -> None:
        index = _CoinIndex(coin_list)  # built outside the lock: 17k entries
        with self._lock:
            state = self._coins
            state.index, state.source = index, source
            state.failures, state.retry_at = 0, 0.0
            state.last_error = None

    def _save_coin_list(self, coin_list: CoinList) -> None:
        try:
            write_coin_list_file(self._coin_list_path, coin_list)
        except OSError as exc:
            logger.warning(
                "Cannot save CoinGecko coin list to %s: %s", self._coin_list_path, exc.strerror
            )

    def _on_coin_list_failure(self, exc: CoinGeckoError, now: float) -> None:
        with self._lock:
            state = self._coins
            state.failures += 1
            state.last_error = str(exc)
            self._calls.errors += 1
            if isinstance(exc, CoinGeckoRateLimited):
                self._calls.status_429 += 1
                self._pause(now, exc.retry_after)
                state.retry_at = self._paused_until
            else:
                state.retry_at = now + self._backoff_delay(state.failures)
            retry_in = state.retry_at - now
        logger.warning("CoinGecko coin list not loaded: %s; next try in %.0fs", exc, retry_in)

    # ------------------------------------------------------------------ outcomes, schedule

    def _on_rate_limited(self, exc: CoinGeckoRateLimited, targets: list[_Pair]) -> None:
        now = self._clock()
        with self._lock:
            self._calls.errors += 1
            self._calls.status_429 += 1
            self._consecutive_failures += 1
            for pair in targets:
                pair.last_error = str(exc)
            pause = self._pause(now, exc.retry_after)
        logger.warning("CoinGecko rate limit: pausing fiat refresh for %.0fs", pause)

    def _on_failure(self, message: str, targets: list[_Pair]) -> None:
        now = self._clock()
        with self._lock:
            self._calls.errors += 1
            self._consecutive_failures += 1
            for pair in targets:
                pair.last_error = message
            delay = self._backoff_delay(self._consecutive_failures)
            self._not_before = self._next_round_at = now + delay
            failures = self._consecutive_failures
        logger.warning(
            "CoinGecko price refresh failed (%d in a row): %s; retry in %.0fs",
            failures,
            message,
            delay,
        )

    def _pause(self, now: float, retry_after: float) -> float:
        """Pause for `retry_after` seconds (`workers.clamp_pause`: at most `MAX_PAUSE_S`, the
        cap every ratekit pause shares); returns the pause. Caller holds `_lock`."""
        pause = clamp_pause(retry_after)
        self._paused_until = max(self._paused_until, now + pause)
        self._not_before = max(self._not_before, self._paused_until)
        self._next_round_at = max(self._next_round_at, self._paused_until)
        return pause

    def _backoff_delay(self, failures: int) -> float:
        """The package's exponential backoff with full jitter (`workers.backoff_ceiling`,
        `workers.full_jitter`), never below the least call interval, never above
        `MAX_PAUSE_S`."""
        ceiling = backoff_ceiling(self._backoff_base, self._backoff_cap, failures)
        return clamp_pause(max(self._min_call_interval, full_jitter(ceiling, self._rng)))

    def _schedule(self, now: float, delay: float) -> None:
        """Next round after `delay`, sooner for pairs registered but never tried. Caller holds
        `_lock`."""
        self._not_before = max(self._paused_until, now + self._min_call_interval)
        self._next_round_at = max(self._not_before, now + delay)
        if any(not pair.attempted for pair in self._pairs.values()):
            self._next_round_at = self._not_before
        if self._coins.index is None and self._coins.retry_at > now:
            self._next_round_at = min(
                self._next_round_at, max(self._not_before, self._coins.retry_at)
            )

    # ------------------------------------------------------------------ helpers

    def _store_call(self, call: Callable[[], _T], fallback: _T) -> _T:
        """A shared-store call that cannot hurt: on any error, log once per outage and carry
        on as a lone bot (`fallback`), without touching the store for a while."""
        now = self._clock()
        if not self._store_healthy and now < self._store_retry_at:
            return fallback
        try:
            result = call()
        except Exception as exc:
            if self._store_healthy:
                logger.warning(
                    "fiat shared store unavailable (%s); refreshing on our own",
                    type(exc).__name__,
                )
            self._store_healthy = False
            self._store_retry_at = now + STORE_RETRY_INTERVAL
            return fallback
        if not self._store_healthy:
            logger.info("fiat shared store is back")
            self._store_healthy = True
        return result

    def _log_once(self, message: str) -> None:
        """Caller holds `_lock`."""
        if message not in self._logged_once:
            self._logged_once.add(message)
            logger.warning(message)

    # ------------------------------------------------------------------ REST contract

    def snapshot(self) -> RatekitFiat:
        """The `/api/v1/ratekit/fiat` document. Holds no secret: the base URL is masked."""
        now = self._clock()
        with self._lock:
            next_refresh_in = max(0.0, self._next_round_at - now)
            pairs: list[RatekitFiatPair] = []
            for pair in sorted(self._pairs.values(), key=lambda p: p.name):
                age = None if pair.fetched_at is None else max(0.0, now - pair.fetched_at)
                state: FiatState = (
                    "never" if age is None else "fresh" if age < self._stale_after else "stale"
                )
                pairs.append(
                    {
                        "pair": pair.name,
                        "gecko_id": pair.gecko_id,
                        "price": pair.price,
                        "age_s": age,
                        "state": state,
                        "last_error": pair.last_error,
                        "next_refresh_in_s": None if pair.unsupported else next_refresh_in,
                    }
                )
            index = self._coins.index
            calls = self._calls
            return {
                "enabled": True,
                "base_url": self._client.masked_base_url,
                "refresh_interval": self._refresh_interval,
                "stale_after": self._stale_after,
                "running": self.is_running,
                "pairs": pairs,
                "coin_list": {
                    "entries": index.entries if index else 0,
                    "age_s": max(0.0, now - index.fetched_at) if index else None,
                    "source": self._coins.source,
                    "path": str(self._coin_list_path),
                    "last_error": self._coins.last_error,
                },
                "last_refresh_at": self._last_refresh_at,
                "consecutive_failures": self._consecutive_failures,
                "paused_until": self._paused_until if self._paused_until > now else None,
                "calls": {
                    "simple_price": calls.simple_price,
                    "coins_list": calls.coins_list,
                    "errors": calls.errors,
                    "status_429": calls.status_429,
                    "shared_hits": calls.shared_hits,
                },
                "shared_store": None
                if self._store is None
                else {"kind": type(self._store).__name__, "healthy": self._store_healthy},
            }
