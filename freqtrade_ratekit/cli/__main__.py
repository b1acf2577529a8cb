"""`python -m freqtrade_ratekit.cli`: the console script, as the test harness and benches start
bots (the same entry point as `freqtrade-ratekit`)."""

import sys

from freqtrade_ratekit.cli import main

sys.exit(main())
