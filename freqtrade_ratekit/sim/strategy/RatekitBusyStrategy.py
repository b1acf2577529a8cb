"""A strategy that keeps the trading loop busy: it enters whenever a slot is free and exits on
price (a small ROI or stop) or after a short while, so entry orders fill and exits are decided
on fresh rates all the time. For the fault-injection tests: the bot must keep trading."""

from datetime import datetime

from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy
from pandas import DataFrame

MAX_TRADE_AGE_S = 20


class RatekitBusyStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "1m"
    minimal_roi = {"0": 0.001}
    stoploss = -0.003
    trailing_stop = False
    use_exit_signal = False
    process_only_new_candles = False
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe

    def custom_exit(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        **kwargs: object,
    ) -> str | None:
        if (current_time - trade.open_date_utc).total_seconds() >= MAX_TRADE_AGE_S:
            return "ratekit_busy_timeout"
        return None
