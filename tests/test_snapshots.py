"""ReaderSnapshots: fresh while nothing changed, stale answers served at once and recomputed
behind, the reader's own computation only without a usable snapshot. Injected clock; the
worker's job (`refresh_due`) is called directly, as its thread would."""

import threading

import pytest

from freqtrade_ratekit.snapshots import (
    KEEP_WARM_S,
    MIN_SPACING_S,
    STALE_LIMIT_FACTOR,
    ReaderSnapshots,
)
from tests.helpers import FakeClock, ratekit_threads, wait_for

MAX_AGE = 5.0


class Source:
    """What /profit would compute: the number of times it ran, and the data it read."""

    def __init__(self) -> None:
        self.runs = 0
        self.data = {"closed": 0}
        self.error: Exception | None = None

    def __call__(self) -> dict:
        self.runs += 1
        if self.error is not None:
            raise self.error
        return {"closed": self.data["closed"], "run": self.runs}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def snapshots(clock):
    return ReaderSnapshots(max_age=MAX_AGE, clock=clock)


def row(snapshots, label="profit"):
    return next(r for r in snapshots.snapshot()["snapshots"] if r["call"] == label)


def test_first_read_computes_then_reads_are_served_from_the_snapshot(snapshots):
    source = Source()
    assert snapshots.read("k", source, "profit") == {"closed": 0, "run": 1}
    assert snapshots.read("k", source, "profit") == {"closed": 0, "run": 1}
    assert source.runs == 1
    figures = row(snapshots)
    assert (figures["misses"], figures["hits"], figures["fresh"]) == (1, 1, True)


def test_readers_get_copies(snapshots):
    source = Source()
    snapshots.read("k", source).update(closed=99)
    assert snapshots.read("k", source)["closed"] == 0


def test_a_change_makes_it_stale_served_at_once_and_recomputed_behind(snapshots, clock):
    source = Source()
    snapshots.read("k", source, "profit")
    clock.advance(MIN_SPACING_S)
    source.data["closed"] = 1
    snapshots.invalidate()

    assert snapshots.read("k", source, "profit")["closed"] == 0  # stale, no waiting
    assert source.runs == 1
    assert row(snapshots)["stale_hits"] == 1
    snapshots.refresh_due()
    assert source.runs == 2
    assert snapshots.read("k", source, "profit")["closed"] == 1
    assert row(snapshots)["fresh"] is True


def test_a_burst_of_changes_is_recomputed_once_per_spacing(snapshots, clock):
    """A bot opening many trades commits many times a second: one recomputation per
    MIN_SPACING_S, not one per commit."""
    source = Source()
    snapshots.read("k", source)
    for _ in range(8):  # a commit every quarter of the spacing, the worker woken by each
        clock.advance(MIN_SPACING_S / 4)
        snapshots.invalidate()
        snapshots.refresh_due()
    assert source.runs == 1 + 2  # the first read, then one recomputation per spacing


def test_age_alone_makes_it_due_for_the_worker(snapshots, clock):
    source = Source()
    snapshots.read("k", source)
    snapshots.refresh_due()
    assert source.runs == 1  # fresh: nothing to do
    clock.advance(MAX_AGE)
    snapshots.refresh_due()
    assert source.runs == 2


def test_a_change_during_the_computation_keeps_it_stale(snapshots, clock):
    source = Source()
    snapshots.read("k", source)

    def changing() -> dict:
        snapshots.invalidate()  # the bot commits while /profit is computed
        return source()

    snapshots.invalidate()
    snapshots.read("k", changing)
    clock.advance(MIN_SPACING_S)
    snapshots.refresh_due()
    clock.advance(MIN_SPACING_S)
    snapshots.refresh_due()  # computed at the version before the change: due again
    assert source.runs == 3
    assert snapshots.snapshot()["snapshots"][0]["fresh"] is False


def test_too_old_a_snapshot_is_computed_on_the_readers_path(snapshots, clock):
    source = Source()
    snapshots.read("k", source)
    clock.advance(MAX_AGE * STALE_LIMIT_FACTOR + 1)  # the worker could not refresh it
    source.data["closed"] = 3
    assert snapshots.read("k", source)["closed"] == 3
    assert source.runs == 2


def test_unread_snapshots_are_dropped_not_refreshed(snapshots, clock):
    source = Source()
    snapshots.read("k", source)
    clock.advance(KEEP_WARM_S + 1)
    snapshots.refresh_due()
    assert source.runs == 1
    assert snapshots.snapshot()["snapshots"] == []


def test_failures_keep_the_last_answer_and_make_the_worker_back_off(snapshots, clock):
    source = Source()
    snapshots.read("k", source, "profit")
    source.error = RuntimeError("database is locked")
    clock.advance(MAX_AGE)
    with pytest.raises(RuntimeError, match=r"profit: .*database is locked"):
        snapshots.refresh_due()
    assert snapshots.read("k", source, "profit") == {"closed": 0, "run": 1}
    assert "database is locked" in row(snapshots)["last_error"]


def test_a_failing_inline_computation_raises_like_stock(snapshots):
    source = Source()
    source.error = ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        snapshots.read("k", source)


def test_keys_are_independent(snapshots):
    long, short = Source(), Source()
    snapshots.read(("profit", "long"), long)
    snapshots.read(("profit", "short"), short)
    snapshots.read(("profit", "long"), long)
    assert (long.runs, short.runs) == (1, 1)


def test_the_worker_thread_recomputes_after_a_change():
    """Real thread, real clock: invalidate() wakes the worker, no read needed."""
    source = Source()
    cleaned = threading.Event()
    snapshots = ReaderSnapshots(max_age=60, after_background=cleaned.set)
    before = ratekit_threads(snapshots.worker.name)
    snapshots.start()
    try:
        snapshots.read("k", source)
        source.data["closed"] = 1
        snapshots.invalidate()
        wait_for(lambda: source.runs, lambda runs: runs == 2, 5, "a background recompute")
        assert snapshots.read("k", source)["closed"] == 1
        assert cleaned.is_set()  # the worker released its resources (its DB session)
    finally:
        snapshots.stop()
    assert not ratekit_threads(snapshots.worker.name) - before, "the worker outlived stop()"


def test_max_age_must_be_positive():
    with pytest.raises(ValueError, match="max_age"):
        ReaderSnapshots(max_age=0)
