"""Target `Configuration.load_config`: validate the `ratekit` section of every config once,
at load, and activate ratekit with the parsed settings when it is enabled.

Armed by `install()`; the only patch in place while a config leaves ratekit disabled.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from freqtrade_ratekit import runtime
from freqtrade_ratekit.config import RatekitConfigError, validate_bot_config
from freqtrade_ratekit.patches._patcher import PATCHER
from freqtrade_ratekit.patches._state import active_runtime

logger = logging.getLogger(__name__)

TARGET = PATCHER.target("config_loader")


def _config_error(exc: RatekitConfigError) -> Exception:
    """A Freqtrade OperationalException, so `freqtrade` exits non-zero with the message."""
    from freqtrade.exceptions import OperationalException

    return OperationalException(str(exc))


def _wrap_load_config(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def load_config(self: Any) -> dict[str, Any]:
        from freqtrade_ratekit import patches

        config = original(self)
        try:
            settings = validate_bot_config(config)
        except RatekitConfigError as exc:
            raise _config_error(exc) from None
        if settings.enabled:
            args = getattr(self, "args", None)
            command = args.get("command") if isinstance(args, dict) else None
            patches.activate(settings, command=command if isinstance(command, str) else None)
        elif not patches.is_active():
            logger.info("ratekit is disabled for this config: Freqtrade runs unpatched")
        elif active_runtime() is not None:
            # a reload (/reload_config) turned ratekit off: what is built next runs as stock
            runtime.replace(None)
        return config

    return load_config


def _instrument() -> None:
    from freqtrade.configuration import Configuration

    TARGET.replace(Configuration, "load_config", _wrap_load_config(Configuration.load_config))


def _uninstrument() -> None:
    TARGET.restore()
