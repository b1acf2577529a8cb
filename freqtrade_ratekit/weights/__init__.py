"""Weight accounting: presets of published limits, a ledger that admits ccxt REST calls into
rolling windows, header sync and 429/418 pauses, memory and Redis backends, ccxt hooks."""

from freqtrade_ratekit.weights.backends import (
    Backend,
    BackendStatus,
    MemoryBackend,
    RedisBackend,
    WindowSpec,
    mask_url,
    scope_digest,
)
from freqtrade_ratekit.weights.ccxt_hooks import Instrumentation, api_family, instrument
from freqtrade_ratekit.weights.headers import UsageReading, parse_usage
from freqtrade_ratekit.weights.ledger import Charge, Ledger, Mode
from freqtrade_ratekit.weights.presets import (
    PoolSpec,
    Preset,
    Priority,
    classify_priority,
    preset_for,
    preset_names,
)
from freqtrade_ratekit.workers import RetryPolicy, parse_retry_after

__all__ = [
    "Backend",
    "BackendStatus",
    "Charge",
    "Instrumentation",
    "Ledger",
    "MemoryBackend",
    "Mode",
    "PoolSpec",
    "Preset",
    "Priority",
    "RedisBackend",
    "RetryPolicy",
    "UsageReading",
    "WindowSpec",
    "api_family",
    "classify_priority",
    "instrument",
    "mask_url",
    "parse_retry_after",
    "parse_usage",
    "preset_for",
    "preset_names",
    "scope_digest",
]
