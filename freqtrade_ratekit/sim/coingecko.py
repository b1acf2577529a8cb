"""A CoinGecko v3 emulator: ``ping``, ``coins/list`` and ``simple/price``.

Routes answer both under ``/api/v3/...`` (the real layout) and at the root, so a client whose
base URL is either ``http://host:port`` or ``http://host:port/api/v3`` reaches them. API keys
(``x_cg_demo_api_key`` query parameter, ``x-cg-demo-api-key`` / ``x-cg-pro-api-key`` headers)
are accepted and ignored.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from freqtrade_ratekit.sim.limits import RollingWindow
from freqtrade_ratekit.sim.market import WELL_KNOWN_BASES, MarketUniverse, unit_hash
from freqtrade_ratekit.sim.server import (
    COMMON_BOUNDS,
    COMMON_DEFAULTS,
    BaseEmulator,
    RunningEmulator,
    json_response,
    malformed_response,
)

COINGECKO_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "force_429": False,  # every data request answers 429 with Retry-After: retry_after
    "retry_after": 60,
    "calls_per_minute": 0,  # per client over a rolling minute; 0 = unlimited
}
COINGECKO_BOUNDS: dict[str, tuple[float, float]] = {
    **COMMON_BOUNDS,
    # Far beyond any sane wait on purpose: clients must survive an absurd Retry-After.
    "retry_after": (0, 10**12),
    "calls_per_minute": (0, 1_000_000_000),
}

# (id, symbol, name, USD price) of coins Freqtrade's fiat converter looks up by name.
KNOWN_COINS: list[tuple[str, str, str, float]] = [
    ("tether", "usdt", "Tether", 1.0),
    ("bitcoin", "btc", "Bitcoin", WELL_KNOWN_BASES["BTC"]),
    ("ethereum", "eth", "Ethereum", WELL_KNOWN_BASES["ETH"]),
    ("binancecoin", "bnb", "BNB", WELL_KNOWN_BASES["BNB"]),
    ("solana", "sol", "Solana", WELL_KNOWN_BASES["SOL"]),
    ("usd-coin", "usdc", "USDC", 1.0),
    ("binance-usd", "busd", "BUSD", 1.0),
    ("true-usd", "tusd", "TrueUSD", 1.0),
    ("ripple", "xrp", "XRP", WELL_KNOWN_BASES["XRP"]),
    ("cardano", "ada", "Cardano", WELL_KNOWN_BASES["ADA"]),
    ("dogecoin", "doge", "Dogecoin", WELL_KNOWN_BASES["DOGE"]),
    ("tron", "trx", "TRON", WELL_KNOWN_BASES["TRX"]),
    ("polkadot", "dot", "Polkadot", WELL_KNOWN_BASES["DOT"]),
    ("litecoin", "ltc", "Litecoin", WELL_KNOWN_BASES["LTC"]),
    ("chainlink", "link", "Chainlink", WELL_KNOWN_BASES["LINK"]),
    ("avalanche-2", "avax", "Avalanche", WELL_KNOWN_BASES["AVAX"]),
    ("cosmos", "atom", "Cosmos Hub", WELL_KNOWN_BASES["ATOM"]),
    ("uniswap", "uni", "Uniswap", WELL_KNOWN_BASES["UNI"]),
    ("stellar", "xlm", "Stellar", WELL_KNOWN_BASES["XLM"]),
    ("ethereum-classic", "etc", "Ethereum Classic", WELL_KNOWN_BASES["ETC"]),
    # Look-alikes sharing a symbol, as on the real list: why Freqtrade maps usdt -> tether.
    ("bridged-tether-sim", "usdt", "Bridged Tether (Sim)", 1.0),
    ("wrapped-ether-sim", "eth", "Wrapped Ether (Sim)", WELL_KNOWN_BASES["ETH"]),
]

# USD value of one unit of each quote currency (rough, fixed: the fiat side barely moves).
VS_CURRENCIES_USD: dict[str, float] = {
    "usd": 1.0,
    "eur": 1.08,
    "gbp": 1.27,
    "jpy": 0.0067,
    "chf": 1.12,
    "cad": 0.73,
    "aud": 0.66,
    "cny": 0.14,
    "krw": 0.00073,
    "inr": 0.012,
    "rub": 0.011,
    "brl": 0.18,
    "try": 0.029,
    "sgd": 0.74,
    "hkd": 0.128,
    "btc": WELL_KNOWN_BASES["BTC"],
    "eth": WELL_KNOWN_BASES["ETH"],
    "bnb": WELL_KNOWN_BASES["BNB"],
}

DEFAULT_COIN_COUNT = 17000
RATE_WINDOW_S = 60.0


def _filler_coins(count: int, seed: int, taken: set[str]) -> list[tuple[str, str, str, float]]:
    rng = random.Random(seed * 7919 + 17)
    syllables = ["ba", "ko", "ri", "zen", "lu", "mo", "ta", "vi", "xo", "qua", "nex", "dra"]
    coins: list[tuple[str, str, str, float]] = []
    while len(coins) < count:
        word = "".join(rng.choices(syllables, k=rng.randint(2, 4)))
        coin_id = f"{word}-{rng.choice(['token', 'coin', 'protocol', 'finance', 'ai', 'dao'])}"
        if coin_id in taken:
            continue
        taken.add(coin_id)
        symbol = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 5)))
        coins.append((coin_id, symbol, coin_id.replace("-", " ").title(), 10 ** rng.uniform(-6, 3)))
    return coins


class CoinGeckoEmulator(BaseEmulator):
    defaults: ClassVar[dict[str, Any]] = COINGECKO_DEFAULTS
    bounds: ClassVar[dict[str, tuple[float, float]]] = COINGECKO_BOUNDS

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        seed: int = 42,
        coin_count: int = DEFAULT_COIN_COUNT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, seed=seed, clock=clock)
        self.seed = seed
        self.wall_clock = wall_clock
        coins = list(KNOWN_COINS)
        taken = {c[0] for c in coins}
        # The exchange emulator's generated assets, so any of its bases can be converted too.
        for market in MarketUniverse(seed=seed).markets.values():
            coin_id = f"{market.base.lower()}-sim"
            if market.base not in WELL_KNOWN_BASES and coin_id not in taken:
                taken.add(coin_id)
                coins.append((coin_id, market.base.lower(), market.base, market.base_price))
        coins += _filler_coins(max(0, coin_count - len(coins)), seed, taken)
        self.coins = coins
        self.usd_prices = {coin_id: price for coin_id, _, _, price in coins}
        listing = [{"id": c, "symbol": s, "name": n} for c, s, n, _ in coins]
        self._coins_list_body = json.dumps(listing, separators=(",", ":")).encode()
        self._windows: dict[str, RollingWindow] = {}
        self.routes: dict[str, Callable[[Mapping[str, str]], Any]] = {
            "/ping": lambda p: {"gecko_says": "(V3) To the Moon!"},
            "/coins/list": lambda p: self._coins_list_body,
            "/simple/price": self._simple_price,
        }

    def reset(self) -> None:
        super().reset()
        self._windows.clear()

    def usd_price(self, coin_id: str, at: float) -> float:
        """A slow deterministic drift around the coin's base price (stablecoins barely move)."""
        base = self.usd_prices[coin_id]
        amplitude = 0.001 if base == 1.0 else 0.01
        phase = unit_hash(self.seed, coin_id) * 2 * math.pi
        return base * (1 + amplitude * math.sin(2 * math.pi * at / 3600 + phase))

    def _simple_price(self, params: Mapping[str, str]) -> dict[str, dict[str, float]]:
        ids = [i.strip() for i in params.get("ids", "").split(",") if i.strip()]
        currencies = [c.strip().lower() for c in params.get("vs_currencies", "").split(",")]
        currencies = [c for c in currencies if c]
        if not ids or not currencies:
            raise ValueError("Missing parameter ids or vs_currencies")
        unknown = set(self.settings["unknown_symbols"])
        now = self.wall_clock()
        result: dict[str, dict[str, float]] = {}
        for coin_id in ids:
            if coin_id not in self.usd_prices or coin_id in unknown:
                continue  # CoinGecko leaves unknown ids out
            usd = self.usd_price(coin_id, now)
            result[coin_id] = {
                cur: float(f"{usd / VS_CURRENCIES_USD[cur]:.10g}")
                for cur in currencies
                if cur in VS_CURRENCIES_USD
            }
        return result

    def _rate_limited(self, client: str) -> int | None:
        """Retry-After seconds when this call must answer 429, else None."""
        if self.settings["force_429"]:
            return int(self.settings["retry_after"])
        per_minute = self.settings["calls_per_minute"]
        if per_minute <= 0:
            return None
        now = self.clock()
        window = self._windows.setdefault(client, RollingWindow())
        if window.used(now, RATE_WINDOW_S) + 1 > per_minute:
            wait = window.seconds_until_room(now, RATE_WINDOW_S, 1, per_minute)
            return max(1, math.ceil(wait))
        window.add(now, 1)
        return None

    async def handle_traffic(self, request: web.Request) -> tuple[str, float, web.Response]:
        path = request.path
        if path.startswith("/api/v3/"):
            path = path[len("/api/v3") :]
        endpoint = f"/api/v3{path}"
        route = self.routes.get(path) if request.method == "GET" else None
        retry_after = self._rate_limited(self.client_id(request))
        await self.wait_for_delays()
        if retry_after is not None:
            body = {
                "status": {
                    "error_code": 429,
                    "error_message": "You've exceeded the Rate Limit. Please visit"
                    " https://www.coingecko.com/en/api/pricing to subscribe to our API plans"
                    " for higher rate limits.",
                }
            }
            return endpoint, 1, json_response(body, 429, {"Retry-After": str(retry_after)})
        failure = self.roll_failure()
        if failure is not None:
            return endpoint, 1, json_response({"error": "simulated failure"}, failure)
        if route is None:
            return endpoint, 1, json_response({"error": "Not Found"}, 404)
        try:
            payload = route(request.query)
        except ValueError as err:
            return endpoint, 1, json_response({"error": str(err)}, 400)
        if self.roll_malformed():
            return endpoint, 1, malformed_response()
        if isinstance(payload, bytes):
            return endpoint, 1, web.Response(body=payload, content_type="application/json")
        return endpoint, 1, json_response(payload)


def start_coingecko_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 42,
    coin_count: int = DEFAULT_COIN_COUNT,
    **settings: Any,
) -> RunningEmulator[CoinGeckoEmulator]:
    """Start the CoinGecko emulator on a background thread; ``settings`` as for PUT."""
    emulator = CoinGeckoEmulator(settings, seed=seed, coin_count=coin_count)
    return RunningEmulator(emulator, host, port).start()
