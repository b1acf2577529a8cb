"""Run real Freqtrade dry-run bots against the emulators: configs, processes, REST helpers.

Used by the end-to-end tests, the benchmarks and ``freqtrade-ratekit demo``. A bot runs in its
own process (exactly as a user runs it), either through ``freqtrade_ratekit.cli`` (ratekit) or
through ``freqtrade_ratekit.sim.stock`` (stock Freqtrade with only CoinGecko redirected).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import requests

from freqtrade_ratekit.sim.profiles import DEFAULT_EXCHANGE, exchange_config_block
from freqtrade_ratekit.sim.stock import COINGECKO_URL_ENV

STRATEGY_NAME = "RatekitDemoStrategy"
STRATEGY_DIR = Path(__file__).parent / "strategy"
API_USERNAME = "ratekit"
API_PASSWORD = "ratekit-sim-password"  # noqa: S105  (loopback-only throwaway bots)
STAKE_AMOUNT = 20.0  # above the emulator's 5 USDT minimum notional
RATEKIT_MODULE = "freqtrade_ratekit.cli"
STOCK_MODULE = "freqtrade_ratekit.sim.stock"
LOG_TAIL_CHARS = 4000

T = TypeVar("T")


class BotError(RuntimeError):
    """The bot did not start, or refused a request; the message carries the log tail."""


IDLE_TRADING_LOOP: dict[str, Any] = {
    "timeframe": "1d",
    "internals": {"process_throttle_secs": 3600},
}
"""Config overrides that keep a bot's trading loop idle once trades are open (force entries
still work): its `handle_trade` would otherwise re-price every open trade each iteration with
`refresh=True`, in stock and ratekit alike, hiding what REST reads cost."""


ORDER_BOOK_PRICING: dict[str, Any] = {
    "entry_pricing": {"use_order_book": True, "order_book_top": 50},
    "exit_pricing": {"use_order_book": True, "order_book_top": 50},
}
"""Config overrides that price every open trade from an order book (depth weight 5, 50 levels)
on each loop iteration instead of from a ticker."""

GREEDY_TRADING: dict[str, Any] = {"timeframe": "1m", **ORDER_BOOK_PRICING}
"""Config overrides for a bot that spends weight fast: 1-minute candles, and every open trade
priced from an order book (`ORDER_BOOK_PRICING`) on each loop iteration, as greedy bots do."""


def enforced_weights(headroom: float, limit: int, window_s: float, **shared: Any) -> dict[str, Any]:
    """A `ratekit.weights` section that enforces `headroom` x a `REQUEST_WEIGHT` pool of
    `limit` per `window_s` (the emulator's binding window); `shared` adds `backend`,
    `scope_id`, `expected_bots` for bots sharing a Redis budget."""
    return {
        "mode": "enforce",
        "headroom": headroom,
        "pools": {"REQUEST_WEIGHT": {"limit": limit, "interval": window_s}},
        **shared,
    }


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (bound and released: free, not reserved)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(
    read: Callable[[], T],
    done: Callable[[T], object],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
) -> T:
    """Poll `read` every `interval` s until `done(value)` holds and return that value.

    The one poll loop of the tests, the benchmarks and the harness: on timeout it raises an
    `AssertionError` whose message names `what` and carries the last value read. `read` is
    called once more after the deadline, so a slow `read` still gets a last chance.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g}s; last value: {value!r}")
        time.sleep(interval)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` wins, nested dicts are merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def make_bot_config(
    exchange_url: str,
    coingecko_url: str,
    api_port: int,
    *,
    pairs: list[str],
    max_open_trades: int,
    ratekit: dict[str, Any] | None = None,
    fiat_display_currency: str | None = "USD",
    extra: dict[str, Any] | None = None,
    db_dir: Path | None = None,
    exchange: str = DEFAULT_EXCHANGE,
) -> dict[str, Any]:
    """A complete dry-run config against the emulators (``exchange``: the emulator's profile,
    `freqtrade_ratekit.sim.profiles`, and Freqtrade's exchange name).

    Entries and exits are market orders priced from tickers (``use_order_book`` false), so
    every open trade costs one ``fetch_ticker`` when its rate is not cached. With ``ratekit``
    given, ``ratekit.fiat.coingecko_url`` defaults to the CoinGecko emulator. ``extra`` is
    deep-merged last. The SQLite database goes to ``db_dir`` (a new temp dir by default).
    """
    db_path = Path(db_dir or tempfile.mkdtemp(prefix="ratekit-bot-")) / "tradesv3.dryrun.sqlite"
    config: dict[str, Any] = {
        "bot_name": "ratekit-sim",
        "max_open_trades": max_open_trades,
        "stake_currency": "USDT",
        "stake_amount": STAKE_AMOUNT,
        "tradable_balance_ratio": 0.99,
        "dry_run": True,
        "dry_run_wallet": STAKE_AMOUNT * max(1, max_open_trades) * 2 + 1000,
        "cancel_open_orders_on_exit": False,
        "trading_mode": "spot",
        "timeframe": "5m",
        "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
        "entry_pricing": {
            "price_side": "other",
            "use_order_book": False,
            "order_book_top": 1,
            "price_last_balance": 0.0,
            "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1},
        },
        "exit_pricing": {"price_side": "other", "use_order_book": False, "order_book_top": 1},
        "order_types": {
            "entry": "market",
            "exit": "market",
            "emergency_exit": "market",
            "force_entry": "market",
            "force_exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": False,
        },
        "exchange": exchange_config_block(exchange, exchange_url, pairs),
        "pairlists": [{"method": "StaticPairList"}],
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": api_port,
            "verbosity": "error",
            "enable_openapi": False,
            "jwt_secret_key": "ratekit-sim-jwt-secret-0123456789abcdef",
            "ws_token": "ratekit-sim-ws-token-0123456789abcdef",
            "CORS_origins": [],
            "username": API_USERNAME,
            "password": API_PASSWORD,
        },
        "initial_state": "running",
        "force_entry_enable": True,
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
        "db_url": f"sqlite:///{db_path}",
    }
    if fiat_display_currency is not None:
        config["fiat_display_currency"] = fiat_display_currency
    if ratekit is not None:
        config["ratekit"] = deep_merge({"fiat": {"coingecko_url": coingecko_url}}, ratekit)
    # Read by the stock launcher (and harmless for ratekit): where CoinGecko lives.
    config["_sim"] = {"coingecko_url": coingecko_url}
    return deep_merge(config, extra or {})


class CommandProcess:
    """A Freqtrade command that is not a bot (``download-data``, ``list-markets``, ...) in a
    subprocess, through ratekit's CLI or the stock launcher; output goes to ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        config: dict[str, Any],
        workdir: Path,
        *,
        with_ratekit: bool,
        name: str = "command",
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)  # the subcommand and its arguments, without `-c`
        self.config = config
        self.workdir = Path(workdir)
        self.with_ratekit = with_ratekit
        self.extra_env = dict(env or {})
        self.config_path = self.workdir / f"{name}.json"
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._log_file: IO[bytes] | None = None

    def command(self) -> list[str]:
        module = RATEKIT_MODULE if self.with_ratekit else STOCK_MODULE
        return [sys.executable, "-m", module, *self.argv, "-c", str(self.config_path)]

    def start(self) -> CommandProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        self._log_file = self.log_path.open("ab")
        self.started_at = time.time()
        self.process = subprocess.Popen(  # noqa: S603  (our own argv, no shell)
            self.command(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env={**os.environ, "COLUMNS": "160", **self.extra_env},
        )
        return self

    def wait(self, timeout: float) -> int | None:
        """The exit code once it ended within `timeout` s, else None (still running)."""
        if self.process is None:
            raise RuntimeError("not started")
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._ended()
        return code

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (Freqtrade's own abort), then SIGKILL after ``timeout``."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._ended()
        return process.returncode if process is not None else None

    def _ended(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.time()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class BotProcess:
    """A real Freqtrade dry-run bot in a subprocess; logs go to ``workdir / "bot.log"``."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        *,
        with_ratekit: bool,
        strategy: str = STRATEGY_NAME,
        strategy_path: Path = STRATEGY_DIR,
        env: dict[str, str] | None = None,
        coingecko_url: str | None = None,
        launcher: Sequence[str] | None = None,
    ) -> None:
        """`launcher` replaces `python -m <ratekit or stock module>` at the head of the
        command (the benchmarks' timing launcher); Freqtrade's arguments follow it."""
        self.config = config
        # Where the stock launcher sends CoinGecko calls; make_bot_config leaves it in "_sim".
        self.coingecko_url = coingecko_url or config.get("_sim", {}).get("coingecko_url")
        self.workdir = Path(workdir)
        self.with_ratekit = with_ratekit
        self.strategy = strategy
        self.strategy_path = Path(strategy_path)
        self.extra_env = dict(env or {})
        self.launcher = list(launcher) if launcher is not None else None
        self.config_path = self.workdir / "config.json"
        self.log_path = self.workdir / "bot.log"
        self.userdir = self.workdir / "user_data"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._client: Any = None
        self._session = requests.Session()
        self._session.auth = (self.username, self.password)

    @property
    def api_url(self) -> str:
        server = self.config["api_server"]
        return f"http://{server['listen_ip_address']}:{server['listen_port']}"

    @property
    def username(self) -> str:
        return str(self.config["api_server"]["username"])

    @property
    def password(self) -> str:
        return str(self.config["api_server"]["password"])

    def command(self) -> list[str]:
        module = RATEKIT_MODULE if self.with_ratekit else STOCK_MODULE
        head = self.launcher if self.launcher is not None else [sys.executable, "-m", module]
        return [
            *head,
            "trade",
            "-c",
            str(self.config_path),
            "--strategy",
            self.strategy,
            "--strategy-path",
            str(self.strategy_path),
            "--userdir",
            str(self.userdir),
            "--datadir",
            str(self.userdir / "data"),
        ]

    def start(self, timeout: float = 90.0) -> BotProcess:
        """Start the bot and wait until its REST API answers ``/api/v1/ping``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.userdir / "data").mkdir(parents=True, exist_ok=True)
        bot_config = {k: v for k, v in self.config.items() if k != "_sim"}
        self.config_path.write_text(json.dumps(bot_config, indent=2))
        env = {**os.environ, **self.extra_env}
        if self.coingecko_url:
            env.setdefault(COINGECKO_URL_ENV, self.coingecko_url)
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603  (our own argv, no shell)
            self.command(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BotError(f"bot exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                response = self._session.get(f"{self.api_url}/api/v1/ping", timeout=2)
                if response.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise BotError(f"bot API did not answer within {timeout}s:\n{self.log_tail()}")

    @property
    def client(self) -> Any:
        """``freqtrade_client.FtRestClient`` logged in to this bot."""
        if self._client is None:
            from freqtrade_client import FtRestClient

            self._client = FtRestClient(self.api_url, self.username, self.password, timeout=60)
        return self._client

    def get(self, path: str, *, timeout: float = 60.0) -> tuple[int, Any, float]:
        """GET ``path`` (e.g. ``/api/v1/profit``) with auth: (status, JSON or None, seconds)."""
        started = time.perf_counter()
        response = self._session.get(f"{self.api_url}{path}", timeout=timeout)
        elapsed = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body, elapsed

    def get_text(self, path: str, *, timeout: float = 60.0) -> tuple[int, str]:
        """GET ``path`` with auth: (status, body text), for routes that do not answer JSON."""
        response = self._session.get(f"{self.api_url}{path}", timeout=timeout)
        return response.status_code, response.text

    def force_enter(self, pair: str, side: str = "long") -> dict[str, Any]:
        response = self._session.post(
            f"{self.api_url}/api/v1/forceenter", json={"pair": pair, "side": side}, timeout=60
        )
        if response.status_code != 200:
            raise BotError(f"forceenter {pair} -> {response.status_code}: {response.text}")
        return dict(response.json())

    def open_trade_count(self) -> int:
        status, body, _ = self.get("/api/v1/status")
        if status != 200 or not isinstance(body, list):
            return 0
        return sum(1 for t in body if t.get("is_open") and not t.get("has_open_orders"))

    def open_trades(
        self, n: int, *, pairs: list[str] | None = None, timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Force-enter ``n`` distinct pairs (whitelist order) and wait until all are filled."""
        candidates = pairs or list(self.config["exchange"]["pair_whitelist"])
        if len(candidates) < n:
            raise ValueError(f"{n} trades need {n} pairs, only {len(candidates)} given")
        deadline = time.monotonic() + timeout
        entered: list[dict[str, Any]] = []
        for pair in candidates[:n]:
            while True:
                try:
                    entered.append(self.force_enter(pair))
                    break
                except BotError:
                    # Right after start the bot may not have its whitelist yet; retry briefly.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        remaining = max(0.0, deadline - time.monotonic())
        try:
            wait_for(
                self.open_trade_count, lambda m: m >= n, remaining, f"{n} trades open", interval=0.2
            )
        except AssertionError as exc:
            raise BotError(str(exc)) from None
        return entered

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT (Freqtrade's clean shutdown), then SIGKILL after ``timeout``."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._session.close()
        return process.returncode if process is not None else None

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
