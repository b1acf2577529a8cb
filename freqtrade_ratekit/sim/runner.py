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
from freqtrade_ratekit.sim.exchange import exchange_ccxt_config
from freqtrade_ratekit.sim.profiles import (
    DEFAULT_EXCHANGE,
    PROFILES,
    exchange_config_block,
    profile,
)
from freqtrade_ratekit.sim.streams import stream_url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freqtrade-ratekit emulator",
        description="Serve the bundled exchange (Binance or OKX profile) and CoinGecko emulators.",
    )
    parser.add_argument(
        "--exchange",
        default=DEFAULT_EXCHANGE,
        choices=sorted(PROFILES),
        help="exchange profile to serve (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--exchange-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--coingecko-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--weight-limit", type=int, default=None, help="binance: REQUEST_WEIGHT per window (6000)"
    )
    parser.add_argument(
        "--limit-scale",
        type=float,
        default=None,
        help="okx: every published per-endpoint limit x this (1)",
    )
    parser.add_argument(
        "--window-s",
        type=int,
        default=None,
        help="window length, seconds (binance 60, okx 2)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pairs", type=int, default=20, help="pairs in the printed pair_whitelist")
    return parser


def emulator_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The settings the options ask for; an option of the other profile is an error."""
    settings: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "window_s": args.window_s
        if args.window_s is not None
        else profile(args.exchange).default_window_s,
    }
    own = {"binance": ("weight_limit",), "okx": ("limit_scale",)}[args.exchange]
    for option in ("weight_limit", "limit_scale"):
        value = getattr(args, option)
        if value is None:
            continue
        if option not in own:
            flag = "--" + option.replace("_", "-")
            parser.error(f"{flag} does not apply to --exchange {args.exchange}")
        settings[option] = value
    return settings


def config_snippet(
    exchange_url: str, coingecko_url: str, pairs: list[str], exchange: str = DEFAULT_EXCHANGE
) -> dict[str, Any]:
    """What to merge into a Freqtrade config to use the emulators."""
    return {
        # the Binance emulator also streams: point ccxt.pro (and enable_ws) at it
        "exchange": exchange_ccxt_config(exchange_url, pairs, websocket=True)
        if exchange == "binance"
        else exchange_config_block(exchange, exchange_url, pairs),
        "ratekit": {"fiat": {"coingecko_url": coingecko_url}},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    settings = emulator_settings(parser, args)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    exchange = profile(args.exchange).start(
        args.host, args.exchange_port, seed=args.seed, **settings
    )
    coingecko = start_coingecko_emulator(
        args.host, args.coingecko_port, seed=args.seed, latency_ms=args.latency_ms
    )
    try:
        pairs = exchange.emulator.universe.usdt_pairs()[: max(1, args.pairs)]
        print(f"exchange: {exchange.url}")
        print(f"coingecko: {coingecko.url}")
        if args.exchange == "binance":
            print(f"exchange websocket: {stream_url(exchange.url)}")
        snippet = config_snippet(exchange.url, coingecko.url, pairs, args.exchange)
        print(json.dumps(snippet, indent=2))
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
