"""Every preset held to ccxt's own cost table, for each call a trading bot makes.

For one endpoint alone, ccxt's throttle allows `1000 / (rateLimit * cost)` calls per second and
a preset allows the tightest `limit / interval / weight` of the pools it charges. A preset
documents, per call, how the two compare (`CcxtCheck.ratio`, with the reason when it is not 1);
these tests fail when ccxt's table or the preset moves away from what is documented.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import replace

import ccxt
import pytest

from freqtrade_ratekit.weights import api_family
from freqtrade_ratekit.weights.presets import (
    FREQTRADE_CALLS,
    CcxtCheck,
    Preset,
    all_presets,
    charges_for,
    preset_for,
    sustained_rate,
)

CCXT_TOLERANCE = 1.25
"""How far a measured ratio may stray from the documented one: ccxt rounds its costs (1.66 for
1/0.6, 2.7 for 2.66) and pads a few (OKX's rateLimit 110 ms); a doubled or halved figure fails."""

CASES = [
    pytest.param(preset, check, id=f"{preset.name}-{check.call}")
    for preset in all_presets()
    for check in preset.ccxt_checks
]


@pytest.fixture(scope="module")
def ccxt_exchanges():
    """One ccxt instance per class: building them is the slow part."""
    built: dict[str, ccxt.Exchange] = {}

    def get(exchange_id: str) -> ccxt.Exchange:
        if exchange_id not in built:
            built[exchange_id] = getattr(ccxt, exchange_id)()
        return built[exchange_id]

    return get


def measured_ratio(preset: Preset, check: CcxtCheck, exchange: ccxt.Exchange) -> float:
    """Preset calls/s over ccxt calls/s for the check's endpoint; 0 when ccxt does not throttle."""
    abstract = importlib.import_module(f"ccxt.abstract.{preset.ccxt_id}").ImplicitAPI
    entry = abstract.__dict__[check.endpoint]
    params = dict(check.params)
    cost = exchange.calculate_rate_limiter_cost(
        entry.api, entry.method, entry.path, params, entry.config
    )
    weights, _ = charges_for(preset, api_family(entry.api), entry.method, entry.path, cost, params)
    if cost == 0:
        return 0.0
    return sustained_rate(preset, weights) / (1000.0 / (exchange.rateLimit * cost))


@pytest.mark.parametrize(("preset", "check"), CASES)
def test_preset_and_ccxt_agree_within_what_the_preset_documents(preset, check, ccxt_exchanges):
    measured = measured_ratio(preset, check, ccxt_exchanges(preset.ccxt_id))
    if check.ratio == 0:
        assert measured == 0, f"ccxt throttles {check.endpoint} now (ratio {measured:.3g})"
    else:
        assert 1 / CCXT_TOLERANCE <= measured / check.ratio <= CCXT_TOLERANCE, (
            f"{preset.name} {check.call}: preset/ccxt = {measured:.3g}, documented {check.ratio}"
        )
    if check.ratio != 1:
        assert check.why, f"{preset.name} {check.call} disagrees with ccxt without saying why"


@pytest.mark.parametrize(("preset", "check"), CASES)
def test_the_checked_endpoint_is_the_one_ccxt_calls_for_it(preset, check):
    """The check is about the endpoint the bot really hits: ccxt's method calls it."""
    exchange_class = getattr(ccxt, preset.ccxt_id)
    source = inspect.getsource(getattr(exchange_class, check.via or check.method))
    assert f"self.{check.endpoint}(" in source


@pytest.mark.parametrize("preset", all_presets(), ids=lambda preset: preset.name)
def test_every_call_a_bot_makes_is_checked(preset):
    if not preset.ccxt_checks:  # only where the installed ccxt cannot reach the exchange
        assert not hasattr(ccxt, preset.ccxt_id), f"ccxt has {preset.ccxt_id}: add ccxt_checks"
        return
    assert [check.call for check in preset.ccxt_checks] == list(FREQTRADE_CALLS)
    assert preset.sources and preset.read_on


def test_a_preset_limit_off_by_two_fails_the_comparison(ccxt_exchanges):
    """The tolerance is tight enough to see a wrong figure: Bybit's IP limit doubled."""
    preset = preset_for("bybit")
    check = next(c for c in preset.ccxt_checks if c.call == "tickers")
    exchange = ccxt_exchanges("bybit")
    assert measured_ratio(preset, check, exchange) == pytest.approx(check.ratio)
    doubled = replace(
        preset,
        pools=tuple(
            replace(p, limit=p.limit * 2) if p.name == "BYBIT_IP" else p for p in preset.pools
        ),
    )
    ratio = measured_ratio(doubled, check, exchange)
    assert not 1 / CCXT_TOLERANCE <= ratio / check.ratio <= CCXT_TOLERANCE
    assert math.isfinite(ratio)
