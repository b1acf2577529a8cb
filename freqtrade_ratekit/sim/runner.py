"""``freqtrade-ratekit emulator``: both emulators in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from freqtrade_ratekit.sim.coingecko import start_coingecko_emulator
from freqtrade_ratekit.sim.exchange import exchange_ccxt_config, start_exchange_emulator
from freqtrade_ratekit.sim.streams import stream_url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freqtrade-ratekit emulator",
        description="Serve the bundled Binance-compatible exchange and CoinGecko emulators.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--exchange-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--coingecko-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--weight-limit", type=int, default=6000, help="REQUEST_WEIGHT per window")
    parser.add_argument("--window-s", type=int, default=60, help="weight window length")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pairs", type=int, default=20, help="pairs in the printed pair_whitelist")
    return parser


def config_snippet(exchange_url: str, coingecko_url: str, pairs: list[str]) -> dict[str, Any]:
    """What to merge into a Freqtrade config to use the emulators."""
    return {
        "exchange": exchange_ccxt_config(exchange_url, pairs, websocket=True),
        "ratekit": {"fiat": {"coingecko_url": coingecko_url}},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    exchange = start_exchange_emulator(
        args.host,
        args.exchange_port,
        seed=args.seed,
        latency_ms=args.latency_ms,
        weight_limit=args.weight_limit,
        window_s=args.window_s,
    )
    coingecko = start_coingecko_emulator(
        args.host, args.coingecko_port, seed=args.seed, latency_ms=args.latency_ms
    )
    try:
        pairs = exchange.emulator.universe.usdt_pairs()[: max(1, args.pairs)]
        print(f"exchange: {exchange.url}")
        print(f"coingecko: {coingecko.url}")
        print(f"exchange websocket: {stream_url(exchange.url)}")
        print(json.dumps(config_snippet(exchange.url, coingecko.url, pairs), indent=2))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        exchange.stop()
        coingecko.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
