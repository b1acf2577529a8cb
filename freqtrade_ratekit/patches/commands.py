"""Freqtrade commands that create an exchange without trading: `download-data`,
`list-markets`, `list-pairs`, `test-pairlist`, `plot-dataframe` (with downloads), `webserver`,
backtesting and hyperopt where they load markets, ...

With `ratekit.enabled`, their ccxt clients are charged to the same pools, on the same backend,
as the bots of their scope (`Exchange._init_ccxt`, through `instrument_command`), as a non-bot
client: every call at the lowest priority (`weights.ledger.BACKGROUND`), held to
`1 - weights.reserve` of each pool, and listed in the scope's client registry while it runs
(see `weights/clients.py`). `enforce` makes its calls wait rather than fail; a 429/418 pauses
the pools of the scope (this command and every bot) until `Retry-After`.

Only weights are armed here: the rate caches, their refresher and the trading batch stay the
trading bot's (`patches/exchange.py`).

Target `freqtrade.data.history.history_utils.retrieve_progress_tracker`: the progress display
of `download-data` (candles and trades) gets one more line, the time the download waited for
exchange budget and the calls waiting now. A tracker handed in by the caller that reports
through a callback (the webserver's download job, which FreqUI shows) reports each task's
description with the same figures appended; the task itself is not changed.
"""

from __future__ import annotations

import functools
from typing import Any

from freqtrade_ratekit import runtime, wiring
from freqtrade_ratekit.patches._patcher import LOCK, PATCHER
from freqtrade_ratekit.patches._state import active_runtime, trading

TARGET = PATCHER.target("commands")


def _instrument() -> None:
    from freqtrade.data.history import history_utils

    TARGET.replace(
        history_utils,
        "retrieve_progress_tracker",
        _wrap_progress_tracker(history_utils.retrieve_progress_tracker),
    )


def _uninstrument() -> None:
    TARGET.restore()


# --- weights ------------------------------------------------------------------------------


def instrument_command(exchange: Any, api: Any, exchange_config: dict[str, Any]) -> None:
    """Charge the ccxt client `api` of a non-trading Freqtrade `exchange` to the process's
    command ledger (built on first use). Called from `Exchange._init_ccxt`."""
    rt = active_runtime()
    if rt is None or rt.settings.weights.mode == "off" or trading(exchange._config):
        return  # a trading bot's clients are `patches/exchange.py`'s
    from freqtrade_ratekit.weights import instrument

    mode = exchange.trading_mode.value
    instrument(api, _command_ledger(rt, api, exchange_config, exchange._config, mode))


def client_name(rt: runtime.Runtime, config: dict[str, Any]) -> tuple[str, str]:
    """(name, run mode) a command is listed under: its Freqtrade subcommand (`download-data`),
    or its run mode when the config was not loaded by Freqtrade's CLI."""
    mode = config.get("runmode")
    run_mode = str(getattr(mode, "value", mode) or "")
    return rt.command or run_mode or "freqtrade", run_mode


def _command_ledger(
    rt: runtime.Runtime,
    api: Any,
    exchange_config: dict[str, Any],
    config: dict[str, Any],
    trading_mode: str,
) -> Any:
    """One ledger per process and exchange, shared by its sync, async and websocket clients."""
    from freqtrade.exceptions import OperationalException

    from freqtrade_ratekit.weights import Ledger
    from freqtrade_ratekit.weights.clients import ClientIdentity

    with LOCK:
        ledger = rt.weights
        if isinstance(ledger, Ledger) and ledger.preset.exchange_id == api.id:
            return ledger
        name, run_mode = client_name(rt, config)
        try:
            ledger = wiring.build_ledger(
                rt.settings,
                exchange_id=api.id,
                trading_mode=trading_mode,
                rate_limit_ms=api.rateLimit,
                account=exchange_config.get("key") or exchange_config.get("apiKey") or "no-key",
                on_stop=rt.on_stop,
                client=ClientIdentity.this_process(name, run_mode),
            )
        except wiring.WiringError as exc:
            raise OperationalException(str(exc)) from None
        rt.weights = ledger
        rt.exchange_id = api.id
        return ledger


# --- progress -----------------------------------------------------------------------------


def _wrap_progress_tracker(original: Any) -> Any:
    @functools.wraps(original)
    def retrieve_progress_tracker(progress_tracker: Any) -> Any:
        if active_runtime() is None:
            return original(progress_tracker)
        if progress_tracker is not None:
            _report_budget_through_callback(progress_tracker)
            return original(progress_tracker)
        from freqtrade.util import get_progress_tracker

        return get_progress_tracker(cust_callables=[budget_line])

    return retrieve_progress_tracker


_CALLBACK = "_ft_callback"  # CustomProgress's callback (Freqtrade 2025.12 - 2026.9)


def _report_budget_through_callback(tracker: Any) -> None:
    """A tracker that reports through a callback (the webserver's download job) reports each
    task with the budget figures appended to its description."""
    callback = getattr(tracker, _CALLBACK, None)
    if not callable(callback) or getattr(callback, "ratekit_budget", False):
        return

    def with_budget(task: Any) -> Any:
        ledger = _command_ledger_of_this_process()
        if ledger is None:
            return callback(task)
        return callback(_TaskWithBudget(task, budget_text(ledger)))

    with_budget.ratekit_budget = True  # type: ignore[attr-defined]
    setattr(tracker, _CALLBACK, with_budget)


class _TaskWithBudget:
    """A rich `Task` as a progress callback reads it, its description followed by the budget."""

    def __init__(self, task: Any, budget: str) -> None:
        self._task = task
        self.description = f"{task.description} · {budget}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


def _command_ledger_of_this_process() -> Any:
    from freqtrade_ratekit.weights import Ledger

    rt = active_runtime()
    ledger = rt.weights if rt is not None else None
    return ledger if isinstance(ledger, Ledger) and ledger.background else None


def budget_line() -> Any:
    """The progress display's ratekit line: what the download waited for exchange budget."""
    from rich.text import Text

    ledger = _command_ledger_of_this_process()
    if ledger is None:
        return Text("")
    return Text(budget_text(ledger), style="yellow" if ledger.waiting() else "dim")


def budget_text(ledger: Any) -> str:
    waiting = ledger.waiting_status()
    totals = ledger.totals()
    if ledger.mode.value != "enforce":
        held = "counted, never held back (weights.mode observe)"
    else:
        held = f"at most {(1 - ledger.reserve):.0%} of each pool, the rest kept for the bots"
    now = f", {waiting['calls']} calls waiting now" if waiting["calls"] else ""
    return (
        f"ratekit: waited {waiting['blocked_s']:.1f} s for exchange budget{now} "
        f"({totals['calls']} calls, weight {totals['weight']:g}; lowest priority, {held})"
    )
