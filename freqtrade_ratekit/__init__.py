"""freqtrade-ratekit: a drop-in that makes Freqtrade fast and polite towards exchanges.

`install()` patches Freqtrade (only where `ratekit.enabled` is true in a bot's config) and
`uninstall()` puts every patched attribute back.
"""

__version__ = "0.1.0"

from freqtrade_ratekit.patches import install, is_installed, uninstall

__all__ = ["__version__", "install", "is_installed", "uninstall"]
