"""/profit reads every open trade's orders: ratekit loads them in one query, not one per trade."""

from datetime import UTC, datetime

import pytest
from freqtrade.persistence import Order, Trade, init_db
from sqlalchemy import event

from freqtrade_ratekit.patches import readers
from tests.helpers import make_trade


@pytest.fixture
def database():
    init_db("sqlite://")
    for number in range(1, 31):
        trade = make_trade(f"C{number}/USDT", is_open=number % 3 != 0)  # every third: closed
        trade.orders.append(
            Order(
                ft_order_side="buy",
                ft_pair=trade.pair,
                ft_is_open=False,
                ft_amount=1,
                ft_price=20,
                order_id=f"order-{number}",
                status="closed",
                side="buy",
                order_type="market",
                amount=1,
                filled=1,
                remaining=0,
                price=20,
                average=20,
                cost=20,
                order_date=datetime.now(UTC),
            )
        )
        Trade.session.add(trade)
    Trade.session.commit()
    Trade.session.remove()
    yield
    Trade.session.remove()


def count_queries(work):
    statements = []
    engine = Trade.session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = work()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return result, statements


def statistics_reads():
    """What RPC._rpc_trade_statistics does: trades without orders, then each open one's orders."""
    trades = Trade.session.scalars(Trade.get_trades_query(include_orders=False)).all()
    return {
        t.pair: [o.order_id for o in t.select_filled_orders("buy")] for t in trades if t.is_open
    }


def test_stock_reads_orders_one_trade_at_a_time(database):
    orders, statements = count_queries(statistics_reads)
    assert len(orders) == 20
    assert len(statements) == 1 + 20


def test_preload_reads_them_in_one_query_with_the_same_result(database):
    stock, _ = count_queries(statistics_reads)
    Trade.session.remove()

    def preloaded():
        loaded = readers.preload_open_trade_orders()  # held, as the /profit hook holds it
        result = statistics_reads()
        del loaded
        return result

    ours, statements = count_queries(preloaded)
    assert ours == stock
    assert len(statements) == 3  # open trades, their orders, the statistics query itself


def test_preload_leaves_closed_trades_alone(database):
    loaded = readers.preload_open_trade_orders()
    assert len(loaded) == 20
    loaded = [obj for obj in Trade.session.identity_map.values() if isinstance(obj, Trade)]
    assert len(loaded) == 20
    assert all(trade.is_open for trade in loaded)
