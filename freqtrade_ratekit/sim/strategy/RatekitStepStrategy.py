"""A strategy that enters and exits on price only, once per pair: every pair of the whitelist is
bought at the first chance, and each trade ends by its ROI (+2 %) or its stoploss (-3 %). Against
the emulator's pinned prices (`PUT /_sim/settings {"pinned_prices": ...}`) its trades are a
function of the price steps alone, so two bots given the same steps must make the same trades:
the same-decisions test of the trading batch (`tests/test_e2e_same_decisions.py`)."""

from datetime import datetime

from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy
from pandas import DataFrame


class RatekitStepStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    minimal_roi = {"0": 0.02}
    stoploss = -0.03
    trailing_stop = False
    use_exit_signal = False
    process_only_new_candles = True
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe

    def confirm_trade_entry(
        self,
        pair: str,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        current_time: datetime,
        entry_tag: str | None,
        side: str,
        **kwargs: object,
    ) -> bool:
        """One trade per pair in the bot's life: a closed pair is not bought again."""
        return not Trade.get_trades_proxy(pair=pair)
