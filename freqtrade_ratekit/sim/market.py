"""Deterministic market data for the exchange emulator.

Every price is a pure function of (seed, symbol, time, pins), so two emulators started with the
same seed agree, tests can predict values, and nothing is stepped in the background. Without
pins a price follows the seed's path; a pin (`MarketUniverse.pin`, the emulator's
`pinned_prices` setting) holds a symbol's mid price constant from the moment it is set until it
is changed or removed, and the book quantities with it, so a test can step prices one at a time.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import string
import threading
from dataclasses import dataclass
from decimal import Decimal

# Real base assets first, so configs and docs can use familiar names; generated ones follow.
WELL_KNOWN_BASES: dict[str, float] = {
    "BTC": 60000.0,
    "ETH": 3000.0,
    "BNB": 600.0,
    "SOL": 150.0,
    "XRP": 0.6,
    "ADA": 0.45,
    "DOGE": 0.12,
    "TRX": 0.12,
    "DOT": 6.5,
    "LTC": 80.0,
    "LINK": 14.0,
    "AVAX": 30.0,
    "ATOM": 8.0,
    "UNI": 8.0,
    "XLM": 0.11,
    "ETC": 25.0,
    "FIL": 5.0,
    "APT": 8.0,
    "ARB": 0.9,
    "OP": 1.8,
    "NEAR": 5.0,
    "AAVE": 95.0,
    "ALGO": 0.18,
    "SAND": 0.4,
    "MANA": 0.4,
    "AXS": 6.0,
    "EGLD": 35.0,
    "HBAR": 0.08,
    "ICP": 10.0,
    "INJ": 25.0,
    "SUI": 1.1,
    "TIA": 8.0,
    "SEI": 0.4,
    "PEPE": 0.000008,
    "SHIB": 0.00002,
    "FET": 1.5,
    "RNDR": 7.0,
    "GRT": 0.2,
    "CRV": 0.5,
    "MKR": 2500.0,
}

# How far the log-price swings: a few slow waves plus small per-second noise.
WAVE_COUNT = 4
WAVE_AMPLITUDE = 0.02
NOISE_AMPLITUDE = 0.0005
SPREAD_FRACTION = 0.0005
# The pinned mid prices a market accepts: at least ten ticks (so the bid stays well above zero
# after tick rounding) and at most the PRICE_FILTER's maxPrice that exchangeInfo publishes.
MIN_PIN_TICKS = 10
MAX_PRICE = 1_000_000.0

TIMEFRAME_SECONDS = {
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "3d": 259200,
    "1w": 604800,
    "1M": 2592000,
}


def unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) from the parts (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def format_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Market:
    """One spot symbol with fixed precision, so exchangeInfo never changes during a run."""

    symbol: str
    base: str
    quote: str
    base_price: float
    tick_size: float
    step_size: float
    waves: tuple[tuple[float, float, float], ...]  # (period_s, phase, weight)

    @property
    def price_decimals(self) -> int:
        return _decimals(self.tick_size)

    @property
    def qty_decimals(self) -> int:
        return _decimals(self.step_size)

    def fmt_price(self, value: float) -> str:
        return format_number(value, self.price_decimals)

    def fmt_qty(self, value: float) -> str:
        return format_number(value, self.qty_decimals)


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    last: float
    bid_qty: float
    ask_qty: float


Pin = tuple[float, float | None]  # (since, pinned mid price, or None from then on: unpinned)


class MarketUniverse:
    """The symbols an emulator lists and the deterministic path of their prices.

    A symbol's pins are kept as a history (`Pin` entries in time order), so a candle or a
    trade that lies in the past keeps showing what it showed when it was current.
    """

    def __init__(self, seed: int = 42, generated_pairs: int = 360) -> None:
        self.seed = seed
        self._pins: dict[str, tuple[Pin, ...]] = {}  # replaced whole: readers take no lock
        self._pin_lock = threading.Lock()
        rng = random.Random(seed)
        bases: dict[str, float] = dict(WELL_KNOWN_BASES)
        while len(bases) < len(WELL_KNOWN_BASES) + generated_pairs:
            name = "".join(rng.choices(string.ascii_uppercase, k=rng.choice((3, 4, 4, 5))))
            if name in bases or name in {"USDT", "USDC", "BUSD", "FDUSD", "USD"}:
                continue
            bases[name] = 10 ** rng.uniform(-4.0, 3.0)
        self.markets: dict[str, Market] = {}
        for base, price in bases.items():
            self._add(base, "USDT", price)
        # A few cross pairs, as on the real exchange: Freqtrade must ignore them for a USDT stake.
        for base in ("ETH", "BNB", "SOL", "XRP", "LTC"):
            self._add(base, "BTC", bases[base] / bases["BTC"])

    def _add(self, base: str, quote: str, price: float) -> None:
        symbol = f"{base}{quote}"
        magnitude = math.floor(math.log10(price))
        tick = max(1e-8, 10.0 ** (magnitude - 5))  # Binance filters carry 8 decimals
        step = min(1.0, 10.0 ** math.floor(math.log10(0.01 / price)))
        waves = tuple(
            (
                60.0 * 10 ** (unit_hash(self.seed, symbol, "period", i) * 3.2),
                unit_hash(self.seed, symbol, "phase", i) * 2 * math.pi,
                0.5 + unit_hash(self.seed, symbol, "weight", i),
            )
            for i in range(WAVE_COUNT)
        )
        self.markets[symbol] = Market(symbol, base, quote, price, tick, step, waves)

    def get(self, symbol: str) -> Market | None:
        return self.markets.get(symbol)

    def usdt_pairs(self) -> list[str]:
        """Ccxt-style names (``BTC/USDT``) of every USDT market, well-known ones first."""
        return [f"{m.base}/{m.quote}" for m in self.markets.values() if m.quote == "USDT"]

    # pins
    def pin(self, symbol: str, price: float | None, at: float) -> None:
        """From ``at`` on, ``symbol``'s mid price is ``price`` (None: the seed's path again).

        The emulator passes its wall clock; an ``at`` before the symbol's previous pin counts
        as that pin's time, so the history stays in order.
        """
        with self._pin_lock:
            history = self._pins.get(symbol, ())
            if (history[-1][1] if history else None) == price:
                return
            since = max(at, history[-1][0]) if history else at  # a clock set back: no reorder
            self._pins[symbol] = (*history, (since, price))

    def pins(self) -> dict[str, float]:
        """The symbols pinned now and their pinned mid prices."""
        return {
            symbol: price
            for symbol, history in self._pins.items()
            if (price := history[-1][1]) is not None
        }

    def pin_at(self, symbol: str, at: float) -> float | None:
        """The pinned mid price of ``symbol`` at time ``at``, None when it follows its path."""
        history = self._pins.get(symbol)
        if not history:
            return None
        index = bisect.bisect_right(history, at, key=lambda pin: pin[0]) - 1
        return history[index][1] if index >= 0 else None

    def pins_between(self, symbol: str, start: float, end: float) -> list[Pin]:
        """The pin changes of ``symbol`` after ``start`` and at or before ``end``."""
        return [pin for pin in self._pins.get(symbol, ()) if start < pin[0] <= end]

    def check_pin(self, market: Market, price: object) -> float:
        """``price`` as a pinned mid for ``market``; ValueError saying which rule it breaks."""
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise ValueError("must be a number")
        lowest = MIN_PIN_TICKS * market.tick_size
        # No float() before the range check: an int too large for a float raises OverflowError.
        if (isinstance(price, float) and not math.isfinite(price)) or price <= 0:
            raise ValueError("must be a finite price above 0")
        if not lowest <= price <= MAX_PRICE:
            raise ValueError(f"must be from {lowest:g} ({MIN_PIN_TICKS} ticks) to {MAX_PRICE:g}")
        return float(price)

    # prices
    def mid_price(self, market: Market, at: float) -> float:
        pinned = self.pin_at(market.symbol, at)
        if pinned is not None:
            return pinned
        return self._path_price(market, at)

    def _path_price(self, market: Market, at: float) -> float:
        log_move = sum(
            weight * math.sin(2 * math.pi * at / period + phase)
            for period, phase, weight in market.waves
        )
        second = math.floor(at)
        noise = unit_hash(self.seed, market.symbol, "noise", second) - 0.5
        return market.base_price * math.exp(
            WAVE_AMPLITUDE * log_move / WAVE_COUNT + NOISE_AMPLITUDE * noise
        )

    def quote(self, market: Market, at: float) -> Quote:
        """Bid < last < ask on the tick grid; quantities vary per second (while pinned they
        depend on the pinned price only)."""
        pinned = self.pin_at(market.symbol, at)
        mid = pinned if pinned is not None else self._path_price(market, at)
        key: object = ("pin", pinned) if pinned is not None else math.floor(at)
        tick = market.tick_size
        half_spread = max(tick, mid * SPREAD_FRACTION / 2)
        bid = math.floor((mid - half_spread) / tick) * tick
        ask = math.ceil((mid + half_spread) / tick) * tick
        last = round(mid / tick) * tick
        if not bid < last < ask:
            last = bid + tick
            ask = max(ask, last + tick)
        bid_qty = self._qty(market, "bidq", key)
        ask_qty = self._qty(market, "askq", key)
        return Quote(bid=bid, ask=ask, last=last, bid_qty=bid_qty, ask_qty=ask_qty)

    def _qty(self, market: Market, tag: str, key: object) -> float:
        notional = 200.0 + 20000.0 * unit_hash(self.seed, market.symbol, tag, key)
        units = notional / market.base_price
        return max(market.step_size, math.floor(units / market.step_size) * market.step_size)

    def order_book(
        self, market: Market, at: float, limit: int
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """``limit`` levels per side (fewer bids if the tick grid reaches 0); level 0 equals
        the quote's bid/ask. Quantities vary per second, or per pinned price while pinned."""
        current = self.quote(market, at)
        tick = market.tick_size
        pinned = self.pin_at(market.symbol, at)
        key: object = ("pin", pinned) if pinned is not None else math.floor(at)
        bid_levels = min(limit, max(1, round(current.bid / tick)))  # bids stay above 0
        bids = [
            (current.bid - i * tick, self._qty(market, "bid", (key, i))) for i in range(bid_levels)
        ]
        asks = [(current.ask + i * tick, self._qty(market, "ask", (key, i))) for i in range(limit)]
        bids[0] = (current.bid, current.bid_qty)
        asks[0] = (current.ask, current.ask_qty)
        return bids, asks

    def volume(self, market: Market, key: object, timeframe_s: int) -> float:
        """Base volume traded in ``timeframe_s``, fixed by ``key`` (a candle's open time)."""
        return (
            (1000.0 + 100000.0 * unit_hash(self.seed, market.symbol, "vol", key))
            / market.base_price
            * (timeframe_s / 60)
        )

    def candle(self, market: Market, open_s: int, timeframe_s: int, now: float) -> list[float]:
        """[open_ms, open, high, low, close, volume, close_ms]; the open candle ends at now.

        A candle that lies inside one pin (from its open to its close, or to now while it is
        open) is flat: open = high = low = close = the pinned mid. Any other candle takes its
        open and close from the price at those times, and its high and low (widened by a small
        wick) from them, four quarter-point samples and every pinned price set inside it.
        """
        close_at = min(now, open_s + timeframe_s - 0.001)
        open_price = self.mid_price(market, open_s)
        changes = self.pins_between(market.symbol, open_s, close_at)
        if self.pin_at(market.symbol, open_s) is not None and not changes:
            high = low = close_price = open_price
        else:
            samples = [
                self.mid_price(market, at)
                for at in (open_s + timeframe_s * k / 4 for k in range(4))
                if at <= close_at
            ]
            pinned = [price for _, price in changes if price is not None]
            close_price = self.mid_price(market, close_at)
            wick = 1 + 0.001 * unit_hash(self.seed, market.symbol, "wick", open_s, timeframe_s)
            high = max([open_price, close_price, *samples, *pinned]) * wick
            low = min([open_price, close_price, *samples, *pinned]) / wick
        volume = self.volume(market, open_s, timeframe_s)
        return [
            open_s * 1000,
            open_price,
            high,
            low,
            close_price,
            volume,
            (open_s + timeframe_s) * 1000 - 1,
        ]


def decimal_str(value: float) -> str:
    """Binance prints filter values with 8 decimals."""
    return format(Decimal(repr(value)).quantize(Decimal("0.00000001")), "f")
