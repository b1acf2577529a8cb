"""RateCache: every state change driven by an injected clock, never by sleeping."""

from __future__ import annotations

import random
import threading

import pytest
from freqtrade.util import FtTTLCache
from hypothesis import given, settings
from hypothesis import strategies as st

from freqtrade_ratekit.rates.cache import CachedRate, RateCache
from tests.helpers import FakeClock


def make_cache(clock: FakeClock, **overrides: float) -> RateCache:
    settings_: dict[str, float] = {
        "maxsize": 10,
        "ttl": 300,
        "stale_ttl": 3600,
        "negative_ttl": 600,
    }
    settings_.update(overrides)
    return RateCache(
        maxsize=int(settings_["maxsize"]),
        ttl=settings_["ttl"],
        stale_ttl=settings_["stale_ttl"],
        negative_ttl=settings_["negative_ttl"],
        timer=clock,
        wall_clock=lambda: 1_700_000_000.0 + clock.now,
        name="entry",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"ttl": 0}, "ttl"),
        ({"stale_ttl": 100}, "stale_ttl"),
        ({"negative_ttl": -1}, "negative_ttl"),
    ],
)
def test_rejects_bad_settings(kwargs: dict, message: str) -> None:
    settings_ = {"maxsize": 10, "ttl": 300, "stale_ttl": 3600, "negative_ttl": 600, **kwargs}
    with pytest.raises(ValueError, match=message):
        RateCache(**settings_)


def test_fresh_then_stale_then_missing(clock: FakeClock) -> None:
    cache = make_cache(clock)
    cache["BTC/USDT"] = 100.0

    assert cache.get("BTC/USDT") == 100.0
    assert cache["BTC/USDT"] == 100.0
    assert "BTC/USDT" in cache
    assert cache.read("BTC/USDT") == CachedRate(rate=100.0, state="fresh", age=0.0)

    clock.advance(299.9)
    assert cache.get("BTC/USDT") == 100.0

    clock.advance(0.1)  # age == ttl: no longer fresh, exactly like FtTTLCache
    assert cache.get("BTC/USDT") is None
    assert cache.get("BTC/USDT", 0.0) == 0.0
    assert "BTC/USDT" not in cache
    with pytest.raises(KeyError):
        cache["BTC/USDT"]
    read = cache.read("BTC/USDT")
    assert read.state == "stale"
    assert read.rate == 100.0
    assert read.age == pytest.approx(300.0)
    assert [e["state"] for e in cache.entries()] == ["stale"]

    clock.advance(3600 - 300)  # age == stale_ttl: dropped
    assert cache.read("BTC/USDT") == CachedRate(rate=None, state="missing", age=None)
    assert cache.entries() == []
    assert cache.stats()["size"] == 0


def test_counters_and_hit_ratio(clock: FakeClock) -> None:
    cache = make_cache(clock)
    assert cache.stats()["hit_ratio"] == 0.0

    cache["ETH/USDT"] = 10.0
    cache.get("ETH/USDT")  # hit
    cache.read("ETH/USDT")  # hit
    cache.get("XRP/USDT")  # miss
    cache.read("XRP/USDT")  # miss
    clock.advance(400)
    cache.read("ETH/USDT")  # stale read
    cache.get("ETH/USDT")  # miss: trading never sees a stale rate
    _ = "ETH/USDT" in cache  # protocol calls count nothing

    stats = cache.stats()
    assert stats["hits"] == 2
    assert stats["misses"] == 3
    assert stats["stale_reads"] == 1
    assert stats["hit_ratio"] == pytest.approx(2 / 5)
    assert stats["capacity"] == 10
    assert (stats["ttl"], stats["stale_ttl"], stats["negative_ttl"]) == (300, 3600, 600)


def test_failing_pair_retried_after_negative_ttl(clock: FakeClock) -> None:
    cache = make_cache(clock)
    cache.mark_failed("LUNA/USDT", "BadSymbol: market closed")

    assert cache.failing("LUNA/USDT") == "BadSymbol: market closed"
    assert cache.pairs_needing_refresh(["LUNA/USDT", "BTC/USDT"], horizon=0) == ["BTC/USDT"]
    assert cache.read("LUNA/USDT") == CachedRate(
        rate=None, state="failing", age=None, error="BadSymbol: market closed"
    )
    assert cache.get("LUNA/USDT") is None
    assert cache.entries()[0]["state"] == "failing"

    clock.advance(600)
    assert cache.failing("LUNA/USDT") is None
    assert cache.pairs_needing_refresh(["LUNA/USDT"], horizon=0) == ["LUNA/USDT"]
    assert cache.entries() == []  # nothing left to show: the mark is gone
    assert cache.stats()["negative_hits"] == 2  # failing() once, read() once


def test_failing_pair_keeps_showing_last_good_rate(clock: FakeClock) -> None:
    cache = make_cache(clock)
    cache["ADA/USDT"] = 0.5
    clock.advance(100)
    cache.mark_failed("ADA/USDT", "ExchangeError: boom")

    assert cache.get("ADA/USDT") == 0.5  # still fresh: stock Freqtrade would return it too
    read = cache.read("ADA/USDT")
    assert (read.rate, read.state, read.error) == (0.5, "failing", "ExchangeError: boom")

    clock.advance(400)  # stale but within stale_ttl, failure mark still active (600 s)
    assert cache.get("ADA/USDT") is None
    entry = cache.entries()[0]
    assert (entry["rate"], entry["state"], entry["age_s"]) == (0.5, "failing", 500)
    assert entry["updated_at"] == 1_700_000_000.0 + 1000.0
    assert entry["failed_at"] == 1_700_000_000.0 + 1100.0

    cache["ADA/USDT"] = 0.6  # a good fetch clears the mark
    assert cache.failing("ADA/USDT") is None
    assert cache.read("ADA/USDT").state == "fresh"
    assert cache.entries()[0]["error"] is None


def test_zero_negative_ttl_remembers_nothing(clock: FakeClock) -> None:
    cache = make_cache(clock, negative_ttl=0, maxsize=1)
    cache["BTC/USDT"] = 1.0
    cache.mark_failed("LUNA/USDT", "gone")
    assert cache.failing("LUNA/USDT") is None
    assert cache.get("BTC/USDT") == 1.0  # no eviction for a mark that means nothing
    assert cache.stats()["evictions"] == 0


def test_lru_eviction_order_and_count(clock: FakeClock) -> None:
    cache = make_cache(clock, maxsize=3)
    cache["A"] = 1.0
    cache["B"] = 2.0
    cache["C"] = 3.0
    assert cache.get("A") == 1.0  # A becomes most recently used; B is now the oldest
    cache["D"] = 4.0
    assert cache.get("B") is None
    assert sorted(cache) == ["A", "C", "D"]
    cache.read("C")  # readers count as use too
    cache["E"] = 5.0
    assert sorted(cache) == ["C", "D", "E"]
    assert cache.stats()["evictions"] == 2
    assert cache.stats()["size"] == 3


def test_dead_entries_make_room_before_live_ones_are_evicted(clock: FakeClock) -> None:
    cache = make_cache(clock, maxsize=2, stale_ttl=300)
    cache["OLD"] = 1.0
    clock.advance(200)
    cache["LIVE"] = 2.0
    clock.advance(150)  # OLD is past stale_ttl, LIVE is fresh
    cache.get("OLD")  # touching order must not matter for dead entries
    cache["NEW"] = 3.0
    assert sorted(cache) == ["LIVE", "NEW"]
    assert cache.stats()["evictions"] == 0  # expiry is not eviction


def test_pairs_needing_refresh_uses_horizon(clock: FakeClock) -> None:
    cache = make_cache(clock)
    cache["A"] = 1.0
    clock.advance(200)
    cache["B"] = 2.0
    clock.advance(50)  # A is 250 s old, B 50 s
    pairs = ["C", "A", "B", "A"]
    assert cache.pairs_needing_refresh(pairs, horizon=0) == ["C"]
    assert cache.pairs_needing_refresh(pairs, horizon=50) == ["C", "A"]
    assert cache.pairs_needing_refresh(pairs, horizon=250) == ["C", "A", "B"]
    assert cache.stats()["hits"] == cache.stats()["misses"] == 0  # planning is not reading
    with pytest.raises(ValueError, match="horizon"):
        cache.pairs_needing_refresh(pairs, horizon=-1)


def test_mapping_protocol(clock: FakeClock) -> None:
    cache = make_cache(clock)
    cache["A"] = 1.0
    cache["B"] = 2.0
    clock.advance(301)
    cache["C"] = 3.0
    assert len(cache) == 1  # the mapping face only shows fresh rates
    assert list(cache) == ["C"]
    assert cache.stats()["size"] == 3
    assert cache.pop("A", None) is None  # stale: removed, but no fresh rate to return
    assert cache.pop("C") == 3.0
    with pytest.raises(KeyError):
        cache.pop("C")
    del cache["B"]
    assert cache.stats()["size"] == 0
    cache["D"] = 4.0
    cache.clear()
    assert cache.read("D").state == "missing"


def test_entries_sorted_by_pair(clock: FakeClock) -> None:
    cache = make_cache(clock)
    for pair in ["XRP/USDT", "ADA/USDT", "BTC/USDT"]:
        cache[pair] = 1.0
    assert [e["pair"] for e in cache.entries()] == ["ADA/USDT", "BTC/USDT", "XRP/USDT"]
    assert set(cache.entries()[0]) >= {"pair", "rate", "age_s", "state", "error"}
    snapshot = cache.snapshot()
    assert snapshot["size"] == 3
    assert snapshot["entries"] == cache.entries()


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from("ABCD"), st.integers(1, 1000)),
        st.tuples(st.just("get"), st.sampled_from("ABCD"), st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.integers(0, 400)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS)
def test_trading_reads_match_stock_ftttlcache(ops: list[tuple[str, str, int]]) -> None:
    """What Freqtrade's get_rate does with its cache gives the same answers with RateCache."""
    clock = FakeClock(0.0)
    stock = FtTTLCache(maxsize=100, ttl=300, timer=clock)
    ours = make_cache(clock, maxsize=100)
    for op, pair, value in ops:
        if op == "set":
            stock[pair] = float(value)
            ours[pair] = float(value)
        elif op == "get":
            assert ours.get(pair) == stock.get(pair)
            assert (pair in ours) == (pair in stock)
        else:
            clock.advance(value)


def test_concurrent_use_keeps_invariants() -> None:
    cache = RateCache(maxsize=20, ttl=0.05, stale_ttl=0.2, negative_ttl=0.1, name="smoke")
    pairs = [f"P{i}/USDT" for i in range(40)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        try:
            for _ in range(2000):
                pair = rng.choice(pairs)
                action = rng.random()
                if action < 0.3:
                    cache[pair] = rng.random() + 1
                elif action < 0.5:
                    rate = cache.get(pair)
                    assert rate is None or rate >= 1
                elif action < 0.7:
                    read = cache.read(pair)
                    assert read.state in {"fresh", "stale", "failing", "missing"}
                    assert read.rate is None or read.rate >= 1
                elif action < 0.8:
                    cache.mark_failed(pair, "boom")
                elif action < 0.9:
                    cache.pairs_needing_refresh(pairs[:10], horizon=0.01)
                else:
                    cache.entries()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [thread for thread in threads if thread.is_alive()], "a worker did not finish"
    assert not errors
    stats = cache.stats()
    assert stats["size"] <= 20
    assert stats["hits"] + stats["misses"] > 0
    assert 0.0 <= stats["hit_ratio"] <= 1.0
    assert all(entry["state"] in {"fresh", "stale", "failing"} for entry in cache.entries())
