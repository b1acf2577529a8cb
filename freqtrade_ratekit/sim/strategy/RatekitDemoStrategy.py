"""A strategy that never trades on its own: trades open only through force-entry and stay open,
so tests and benchmarks control exactly how many open trades the bot has to keep priced."""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class RatekitDemoStrategy(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    minimal_roi = {"0": 1000.0}  # never take profit
    stoploss = -0.99  # never stop out
    trailing_stop = False
    use_exit_signal = False
    process_only_new_candles = True
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
