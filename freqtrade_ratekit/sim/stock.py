"""Launcher for STOCK Freqtrade, used as the baseline in tests and benchmarks.

The one change: CoinGecko requests go to the URL in ``RATEKIT_SIM_COINGECKO_URL`` (the
emulator), because the test machines have no internet. Nothing else of ratekit is activated.

    python -m freqtrade_ratekit.sim.stock trade -c config.json ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

COINGECKO_URL_ENV = "RATEKIT_SIM_COINGECKO_URL"


def main(argv: Sequence[str] | None = None) -> None:
    url = os.environ.get(COINGECKO_URL_ENV)
    if url:
        from freqtrade_ratekit.sim.redirect import redirect_coingecko

        redirect_coingecko(url)
    from freqtrade.main import main as freqtrade_main

    freqtrade_main(list(argv) if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
