"""Crypto → fiat prices without blocking a reader: shared stores (`store`), the coin list and
its file (`coin_list`), the CoinGecko client (`coingecko`) and the background converter
(`converter`). No Freqtrade import."""
