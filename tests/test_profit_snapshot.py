"""What makes the /profit snapshot stale: a database commit that wrote something, seen through
SQLAlchemy's session events on Freqtrade's real persistence layer (in-memory SQLite)."""

from datetime import UTC, datetime, timedelta

import pytest
from freqtrade.configuration import Configuration
from freqtrade.enums import RunMode
from freqtrade.persistence import Trade, init_db

from freqtrade_ratekit import patches, runtime
from freqtrade_ratekit.patches import readers as reader_hooks
from tests.helpers import make_trade, write_config


@pytest.fixture
def snapshots(tmp_path):
    patches.install()
    path = write_config(tmp_path, ratekit={"enabled": True, "readers": {"max_age": 60}})
    Configuration({"config": [str(path)]}, RunMode.OTHER).get_config()
    init_db("sqlite://")
    readers = reader_hooks.reader_snapshots()
    assert readers is not None and runtime.current().readers is readers
    yield readers
    Trade.session.remove()
    patches.uninstall()


def version(readers) -> int:
    return int(readers.snapshot()["data_version"])


def test_a_commit_that_wrote_invalidates(snapshots):
    before = version(snapshots)
    Trade.session.add(make_trade("ETH/USDT"))
    Trade.commit()
    assert version(snapshots) == before + 1


def test_a_commit_with_nothing_written_does_not(snapshots):
    before = version(snapshots)
    Trade.commit()
    Trade.session.scalars(Trade.get_trades_query()).all()
    Trade.commit()
    assert version(snapshots) == before


def test_a_rolled_back_write_does_not(snapshots):
    before = version(snapshots)
    Trade.session.add(make_trade("XRP/USDT"))
    Trade.session.flush()
    Trade.rollback()
    Trade.commit()
    assert version(snapshots) == before


def test_an_update_of_a_trade_invalidates(snapshots):
    trade = make_trade("ADA/USDT")
    Trade.session.add(trade)
    Trade.commit()
    before = version(snapshots)
    trade.stop_loss = 15.0  # what the bot's loop does to open trades
    Trade.commit()
    assert version(snapshots) == before + 1


def test_snapshots_are_off_when_configured(tmp_path):
    patches.install()
    try:
        path = write_config(tmp_path, ratekit={"enabled": True, "readers": {"snapshot": False}})
        Configuration({"config": [str(path)]}, RunMode.OTHER).get_config()
        assert reader_hooks.reader_snapshots() is None
    finally:
        patches.uninstall()


def arguments(**given):
    return {"stake_currency": "USDT", "fiat_display_currency": "USD", "direction": None, **given}


def test_rest_and_telegrams_plain_profit_share_one_snapshot():
    rest = patches.profit_snapshot_key(arguments(start_date=None))
    telegram = patches.profit_snapshot_key(arguments(start_date=datetime.fromtimestamp(0, UTC)))
    assert rest is not None and rest == telegram


def test_a_start_date_is_computed_and_directions_are_kept_apart():
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert patches.profit_snapshot_key(arguments(start_date=week_ago)) is None
    long = patches.profit_snapshot_key(arguments(start_date=None, direction="long"))
    assert long != patches.profit_snapshot_key(arguments(start_date=None))
