"""`download-data` beside a live bot on one IP: one budget, the bot first.

Each side has its own Binance emulator whose REQUEST_WEIGHT window binds (300 per 10 s from
the same IP) and a running dry-run bot with open trades, priced on every loop iteration. While
the bot trades, `download-data` fetches candles for 20 pairs x 2 timeframes (1m, 5m) x
`DAYS` days from the same emulator:

- stock: stock Freqtrade for both. The download sends as fast as ccxt's own throttle lets it
  (~100 weight/s against 30/s allowed): 429s, then 418 bans of the IP, which hit the bot too.
  The download is stopped after `STOCK_CAP_S` (a ban lasts 2 minutes and doubles: it would
  take many minutes, and still miss candles).
- ratekit: both through `freqtrade-ratekit`, `enforce`, one Redis budget (`scope_id` shared).
  The download runs at the lowest priority and is held to `1 - weights.reserve` of the pool;
  the bot may use all of it. Expected: no 429/418 at all, every candle of every file, the
  download's waiting shown in its progress and its last log line, the bot's calls never held
  back behind it, and the download listed as a non-bot client of the scope (REST API of the
  bot while it runs, `check-config` after it finished).

The trades are opened while the emulators still allow plenty; the limit is lowered (and the
counters cleared) only for the measured run.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from freqtrade_ratekit.sim import (
    CoinGeckoEmulator,
    ExchangeEmulator,
    RunningEmulator,
    exchange_ccxt_config,
    start_coingecko_emulator,
    start_exchange_emulator,
)
from freqtrade_ratekit.sim.harness import (
    BotProcess,
    CommandProcess,
    enforced_weights,
    find_free_port,
    make_bot_config,
)
from tests.redis_fixtures import RedisServer, requires_redis

pytestmark = [pytest.mark.e2e, pytest.mark.load, requires_redis, pytest.mark.timeout(300)]

WINDOW_S = 10
WEIGHT_LIMIT = 300
SETUP_WEIGHT_LIMIT = 1_000_000
HEADROOM = 0.8
RESERVE = 0.5  # weights.reserve's default, written out: the figures below depend on it
PAIRS = 20
TIMEFRAMES = ("1m", "5m")
DAYS = 4
OPEN_TRADES = 5
SCOPE_ID = "e2e-host"
STOCK_CAP_S = 40.0
RATEKIT_TIMEOUT_S = 150.0
# The bot's own calls may wait only for themselves: its trading batch (weight 4 a second) and
# candle refreshes stay far inside the reserve, so whatever it waits is noise, not the download.
BOT_WAIT_BOUND_S = 1.0
BOT_ITERATION_BOUND_S = 2.5  # a histogram bucket bound; the bot's loop runs every second
RATE_LIMITED = re.compile(r"Too much request weight|IP banned|DDosProtection|RateLimitExceeded")
TF_MS = {"1m": 60_000, "5m": 300_000}


@dataclass
class Side:
    name: str
    emulator: RunningEmulator[ExchangeEmulator]
    bot: BotProcess
    workdir: Path
    ratekit: dict[str, Any] | None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def with_ratekit(self) -> bool:
        return self.ratekit is not None


def ratekit_section(redis_url: str) -> dict[str, Any]:
    weights = enforced_weights(
        HEADROOM, WEIGHT_LIMIT, WINDOW_S, backend=redis_url, scope_id=SCOPE_ID
    )
    return {"enabled": True, "weights": {**weights, "reserve": RESERVE}}


def download_config(side: Side, pairs: list[str]) -> dict[str, Any]:
    exchange = exchange_ccxt_config(side.emulator.url, pairs)
    exchange["only_from_ccxt"] = True  # the REST API's klines, not Binance's archive host
    config: dict[str, Any] = {
        "exchange": exchange,
        "stake_currency": "USDT",
        "dry_run": True,
        "pairlists": [{"method": "StaticPairList"}],
        "dataformat_ohlcv": "json",
        "user_data_dir": str(side.bot.userdir),  # exists: the bot's
    }
    if side.ratekit is not None:
        config["ratekit"] = side.ratekit
    return config


def start_side(side: Side) -> None:
    side.bot.start()
    side.bot.open_trades(OPEN_TRADES)


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Side]]:
    redis_server = RedisServer().start()
    coingecko: RunningEmulator[CoinGeckoEmulator] = start_coingecko_emulator()
    built: dict[str, Side] = {}
    try:
        for name in ("stock", "ratekit"):
            emulator = start_exchange_emulator(weight_limit=SETUP_WEIGHT_LIMIT, window_s=WINDOW_S)
            workdir = tmp_path_factory.mktemp(name)
            pairs = emulator.emulator.universe.usdt_pairs()[:PAIRS]
            section = ratekit_section(redis_server.url) if name == "ratekit" else None
            config = make_bot_config(
                emulator.url,
                coingecko.url,
                find_free_port(),
                pairs=pairs,
                max_open_trades=OPEN_TRADES,
                ratekit=section,
                db_dir=workdir,
            )
            bot = BotProcess(config, workdir / "bot", with_ratekit=section is not None)
            built[name] = Side(name, emulator, bot, workdir, section)
        with ThreadPoolExecutor(len(built)) as pool:
            for started in [pool.submit(start_side, side) for side in built.values()]:
                started.result()
        yield built
    finally:
        for side in built.values():
            side.bot.stop()
            side.emulator.stop()
        coingecko.stop()
        redis_server.stop()


def first_candle_ms(days: int) -> int:
    """Where Freqtrade's `--days N` starts, computed as `download_data` computes it."""
    from freqtrade.configuration import TimeRange

    day = (datetime.now() - timedelta(days=days)).strftime("%Y%m%d")  # local time, as Freqtrade
    return int(TimeRange.parse_timerange(f"{day}-").startts * 1000)


def missing_candles(
    datadir: Path, pairs: list[str], since_ms: int, until_ms: int
) -> dict[str, int]:
    """Per file (pair, timeframe) the candles between `since_ms` and `until_ms` it lacks: a
    file that is missing lacks all of them, a gap the candles inside it."""
    missing: dict[str, int] = {}
    for pair, timeframe in itertools.product(pairs, TIMEFRAMES):
        step = TF_MS[timeframe]
        wanted = (until_ms - since_ms) // step
        path = datadir / f"{pair.replace('/', '_')}-{timeframe}.json"
        if not path.exists():
            missing[path.name] = wanted
            continue
        opens = {row[0] for row in json.loads(path.read_text())}
        lacking = sum(1 for k in range(wanted) if since_ms + k * step not in opens)
        if lacking:
            missing[path.name] = lacking
    return missing


def rate_limited_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if RATE_LIMITED.search(line)]


def weights(bot: BotProcess) -> dict[str, Any]:
    status, body, _ = bot.get("/api/v1/ratekit/weights", timeout=10)
    assert status == 200, body
    return dict(body)


def iterations(bot: BotProcess) -> dict[str, Any]:
    status, body, _ = bot.get("/api/v1/ratekit/cache", timeout=10)
    assert status == 200, body
    return dict(body["trading"]["iterations"])


def slower_than(before: dict[str, Any], after: dict[str, Any], bound: float) -> int:
    """Iterations between the two histograms that took longer than bucket `bound`."""

    def above(histogram: dict[str, Any]) -> float:
        within = next(count for le, count in histogram["buckets"] if le == bound)
        return float(histogram["count"] - within)

    return int(above(after) - above(before))


def run_download(side: Side, timeout: float) -> CommandProcess:
    pairs = list(side.bot.config["exchange"]["pair_whitelist"])
    datadir = side.workdir / "data"
    argv = ["download-data", "--datadir", str(datadir), "--days", str(DAYS), "-t", *TIMEFRAMES]
    argv += ["-p", *pairs]
    download = CommandProcess(
        argv,
        download_config(side, pairs),
        side.workdir,
        with_ratekit=side.with_ratekit,
        name="download",
    )
    side.emulator.update(weight_limit=WEIGHT_LIMIT)
    side.emulator.reset()
    log_offset = len(side.bot.log_text())
    seen_clients: list[dict[str, Any]] = []
    before = (weights(side.bot), iterations(side.bot)) if side.with_ratekit else None
    started = time.time()
    download.start()
    deadline = time.monotonic() + timeout
    code = None
    while code is None and time.monotonic() < deadline:
        code = download.wait(2.0)
        if side.with_ratekit and code is None:
            seen_clients += weights(side.bot)["clients"]
    if code is None:
        code = download.stop()
        side.figures["stopped"] = True
    ended = time.time()
    stats = side.emulator.stats(since=started)
    side.figures.update(
        code=code,
        seconds=ended - started,
        status_429=stats["totals"]["status_429"],
        status_418=stats["totals"]["status_418"],
        bot_errors=rate_limited_lines(side.bot.log_text()[log_offset:]),
        missing=missing_candles(datadir, pairs, first_candle_ms(DAYS), int(started * 1000)),
        files=len(pairs) * len(TIMEFRAMES),
        seen_clients=seen_clients,
    )
    if before is not None:
        after = (weights(side.bot), iterations(side.bot))
        side.figures.update(
            bot_wait_s=after[0]["totals"]["wait_s"] - before[0]["totals"]["wait_s"],
            bot_slow_iterations=slower_than(before[1], after[1], BOT_ITERATION_BOUND_S),
            bot_iterations=after[1]["count"] - before[1]["count"],
            clients_after=after[0]["clients"],
        )
    return download


def test_download_data_beside_a_live_bot(sides, capsys):
    stock = sides["stock"]
    run_download(stock, STOCK_CAP_S)
    stock.bot.stop()  # its phase is over: no CPU taken from the ratekit side
    ratekit = sides["ratekit"]
    download = run_download(ratekit, RATEKIT_TIMEOUT_S)
    s, r = stock.figures, ratekit.figures
    log = download.log_text()
    waited = re.search(r"waited ([0-9.]+) s for exchange budget \(calls held back", log)
    with capsys.disabled():
        print(
            f"\nstock:   429 {s['status_429']}, 418 {s['status_418']}, bot rate-limit errors "
            f"{len(s['bot_errors'])}, download {'stopped' if s.get('stopped') else 'ended'} after "
            f"{s['seconds']:.0f}s (exit {s['code']}), files with missing candles "
            f"{len(s['missing'])} of {s['files']} ({sum(s['missing'].values())} candles)\n"
            f"ratekit: 429 {r['status_429']}, 418 {r['status_418']}, bot rate-limit errors "
            f"{len(r['bot_errors'])}, download {r['seconds']:.0f}s (exit {r['code']}), waited "
            f"{waited.group(1) if waited else '?'}s for budget, missing candles "
            f"{sum(r['missing'].values())}; bot: waited {r['bot_wait_s']:.2f}s in "
            f"{r['bot_iterations']} iterations, {r['bot_slow_iterations']} slower than "
            f"{BOT_ITERATION_BOUND_S}s"
        )

    # Stock: the download takes the IP's whole budget, and the bot is banned with it.
    assert s["status_429"] + s["status_418"] > 0, s
    assert s["bot_errors"], "the stock bot saw no rate-limit error"

    # ratekit: not one 429 or 418, for the download or the bot ...
    assert (r["status_429"], r["status_418"]) == (0, 0), r
    assert r["bot_errors"] == [], r["bot_errors"][:5]
    # ... the download finishes with every candle it was asked for ...
    assert r["code"] == 0 and not r.get("stopped"), download.log_text()[-3000:]
    assert r["missing"] == {}, r["missing"]
    # ... and says how long it waited for budget, at the end and in its progress display
    assert waited is not None, log[-3000:]
    assert float(waited.group(1)) > 0  # the pool bound it: it paced itself, it did not fail
    assert "ratekit: waited" in log and "the rest kept for the bots" in log
    assert "download-data (util_exchange) ran at the lowest priority" in log
    # The bot's trading calls never waited behind the download's.
    assert r["bot_wait_s"] < BOT_WAIT_BOUND_S, r
    assert r["bot_iterations"] > 0 and r["bot_slow_iterations"] == 0, r

    # The bot's REST API listed the download as a non-bot client of its scope while it ran ...
    running = [c for c in r["seen_clients"] if c["state"] == "running"]
    assert running and {c["name"] for c in running} == {"download-data"}, r["seen_clients"][:3]
    assert max(c["weight"] for c in running) > 0
    # ... and still lists what it spent once it finished.
    (final,) = r["clients_after"]
    assert (final["name"], final["run_mode"], final["state"]) == (
        "download-data",
        "util_exchange",
        "finished",
    )
    assert final["weight"] > 0 and final["status_429"] == final["status_418"] == 0
    # ... in its metrics too: who spent the scope's budget
    status, text = ratekit.bot.get_text("/api/v1/ratekit/metrics")
    assert status == 200
    spent = re.search(
        r'^ratekit_scope_client_weight_total\{[^}]*client="download-data"[^}]*\} (\S+)$',
        text,
        re.MULTILINE,
    )
    assert spent is not None and float(spent.group(1)) == pytest.approx(final["weight"]), text


def test_check_config_lists_the_finished_download_of_the_scope(sides, capsys, monkeypatch):
    from freqtrade_ratekit.cli import main as cli_main

    monkeypatch.setenv("COLUMNS", "200")

    ratekit = sides["ratekit"]
    if not ratekit.figures:
        pytest.skip("the download did not run")
    path = ratekit.workdir / "download.json"
    assert cli_main(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Non-bot clients of scope '{SCOPE_ID}'" in out
    assert "download-data" in out and "finished" in out and "util_exchange" in out
