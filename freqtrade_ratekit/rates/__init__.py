"""Rates of one exchange: the fresh/stale/failing cache (`cache`), the cheapest ticker source
(`sources`), the background refresher (`refresher`) and the book that ties them together
(`book`). No Freqtrade import: Freqtrade's parts come in as callables."""
