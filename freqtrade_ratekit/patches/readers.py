"""Target the RPC readers: `RPC._rpc_trade_status` / `_rpc_trade_statistics` (REST and
Telegram `/status`, `/profit`) run as reader paths, where the network is never awaited;
`/profit` is served from a background-refreshed snapshot, made stale by SQLAlchemy `Session`
events (a committed write); and the open trades' orders are loaded in one query.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from freqtrade_ratekit.patches._patcher import LOCK, PATCHER
from freqtrade_ratekit.patches._state import active_runtime
from freqtrade_ratekit.snapshots import ReaderSnapshots

logger = logging.getLogger(__name__)

TARGET = PATCHER.target("readers")

READER_METHODS = ("_rpc_trade_status", "_rpc_trade_statistics")
"""RPC methods behind /status, /profit (REST and Telegram) that read rates with refresh=False.

Both catch PricingError and show NaN, so a miss can answer at once. FreqtradeBot._notify_exit
also reads with refresh=False but does not catch it, after the exit order is placed: it stays
a trading read (its rate was fetched with refresh=True moments before, so it is a fresh hit).
"""

_reader = contextvars.ContextVar("ratekit_reader_path", default=False)


def is_reader_path() -> bool:
    """True inside a REST / Telegram / webhook read, where the network must never be awaited."""
    return _reader.get()


@contextmanager
def reader_path() -> Iterator[None]:
    token = _reader.set(True)
    try:
        yield
    finally:
        _reader.reset(token)


def _as_reader(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reader_path():
            return original(*args, **kwargs)

    return wrapper


def _instrument() -> None:
    from freqtrade.rpc.rpc import RPC
    from sqlalchemy.orm import Session

    for name in READER_METHODS:
        TARGET.replace(RPC, name, _as_reader(getattr(RPC, name)))
    TARGET.replace(RPC, "_rpc_trade_statistics", _snapshotted(RPC._rpc_trade_statistics))
    TARGET.listen(Session, "after_flush", note_write)
    TARGET.listen(Session, "after_commit", invalidate_if_written)
    TARGET.listen(Session, "after_rollback", forget_write)


def _uninstrument() -> None:
    TARGET.restore()


def _snapshotted(statistics: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(statistics)

    @functools.wraps(statistics)
    def _rpc_trade_statistics(self: Any, *args: Any, **kwargs: Any) -> Any:
        def compute() -> Any:
            loaded = preload_open_trade_orders()  # held: the session only keeps weak references
            result = statistics(self, *args, **kwargs)
            del loaded
            return result

        snapshots = reader_snapshots()
        if snapshots is None:
            return compute()
        call = signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        key = profit_snapshot_key(call.arguments)
        if key is None:
            return compute()
        _, stake, fiat, direction = key
        label = f"profit {stake}/{fiat or '-'}" + (f" {direction}" if direction else "")
        return snapshots.read(key, compute, label)

    return _rpc_trade_statistics


def profit_snapshot_key(arguments: Mapping[str, Any]) -> tuple[str, Any, Any, Any] | None:
    """Which /profit snapshot a `_rpc_trade_statistics` call reads, None when it has to be
    computed. Telegram's plain /profit passes the epoch, stock's own default for "no start";
    a real start date (`/profit 7`) moves with the clock: nothing to reuse."""
    start_date = arguments.get("start_date")
    if start_date is not None and start_date.timestamp() != 0:
        return None
    return (
        "profit",
        arguments.get("stake_currency"),
        arguments.get("fiat_display_currency"),
        arguments.get("direction"),
    )


_WROTE = "ratekit_wrote"


def note_write(session: Any, _flush_context: Any) -> None:
    """`after_flush`: this session wrote something."""
    session.info[_WROTE] = True


def forget_write(session: Any) -> None:
    """`after_rollback`: what it wrote is gone."""
    session.info.pop(_WROTE, None)


def invalidate_if_written(session: Any) -> None:
    """`after_commit`: a commit that wrote something (the bot's loop, a force-exit) changes
    what /profit shows."""
    if session.info.pop(_WROTE, False):
        rt = active_runtime()
        if rt is not None and isinstance(rt.readers, ReaderSnapshots):
            rt.readers.invalidate()


def precompute_profit(bot: Any) -> None:
    """Compute the REST API's /profit once after start-up, so that its first reader is
    served from memory too. Runs in a background thread; failures only cost that."""
    rpc = getattr(getattr(bot, "rpc", None), "_rpc", None)
    if rpc is None or reader_snapshots() is None:
        return
    try:
        rpc._rpc_trade_statistics(
            bot.config["stake_currency"], bot.config.get("fiat_display_currency")
        )
    except Exception as exc:
        logger.warning("ratekit: computing /profit after start-up failed: %s", exc)
    finally:
        release_thread_session()


def release_thread_session() -> None:
    """End the calling thread's database session (a worker's own, never a request's or the
    bot's). `Trade.session` is looked up on each call: `init_db` may have replaced it."""
    from freqtrade.persistence import Trade

    Trade.session.remove()


def reader_snapshots() -> ReaderSnapshots | None:
    """The current bot's snapshots of reader answers, started on first use; None when off."""
    rt = active_runtime()
    if rt is None or not rt.settings.readers.snapshot:
        return None
    if isinstance(rt.readers, ReaderSnapshots):
        return rt.readers
    with LOCK:
        if not isinstance(rt.readers, ReaderSnapshots):
            snapshots = ReaderSnapshots(
                max_age=rt.settings.readers.max_age, after_background=release_thread_session
            )
            snapshots.start()
            rt.readers = snapshots
            rt.on_stop(snapshots.stop)
        return rt.readers


def preload_open_trade_orders() -> list[Any]:
    """Load every open trade's orders in one query before /profit reads them.

    Freqtrade queries the trades without their orders, then reads each open trade's orders:
    one lazy query per trade, most of a 200-trade /profit. Loading them here puts the orders
    in the request's session, where the statistics query finds them already loaded. Closed
    trades' orders are not read by /profit and stay unloaded. The session's identity map holds
    its objects weakly: the caller keeps the returned trades until the statistics are computed,
    or a garbage collection in between drops them and every order is queried again.
    """
    from freqtrade.persistence import Trade
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    query = select(Trade).filter(Trade.is_open.is_(True)).options(selectinload(Trade.orders))
    return list(Trade.session.scalars(query).all())
