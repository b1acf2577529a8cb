"""What the hooks read at call time: the settings parsed once, at config load.

`activate(settings)` keeps them in the process's runtime (`runtime.current().settings`); a
hook never parses the raw `ratekit` section again (Freqtrade deep-copies its config on the way
to some objects: the settings object is not carried in it).
"""

from __future__ import annotations

from typing import Any

from freqtrade_ratekit import runtime
from freqtrade_ratekit.config import RatekitSettings


def active_runtime() -> runtime.Runtime | None:
    """The runtime of the activated bot config, None when ratekit is off in this process."""
    current = runtime.current()
    return current if current is not None and current.settings.enabled else None


def active_settings() -> RatekitSettings | None:
    """The enabled settings of the bot config loaded in this process, None when off."""
    current = active_runtime()
    return current.settings if current is not None else None


def trading(config: dict[str, Any]) -> bool:
    """Whether `config` runs a bot (dry or live): only then are rates and weights patched."""
    from freqtrade.enums import TRADE_MODES

    return config.get("runmode") in TRADE_MODES


def own_version() -> str:
    from freqtrade_ratekit import __version__

    return __version__
