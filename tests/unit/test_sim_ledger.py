"""The simulator's bulk ledger registration (wechatpay_sim.state.Store.register_ledger)."""
from __future__ import annotations

import pytest

from wechatpay_sim import bill
from wechatpay_sim.records import Refund, Transaction
from wechatpay_sim.state import ApiError, Store

DAY = "2026-01-05"
NOON = 1767585600.0  # 2026-01-05 12:00 Beijing


def txn(n: int) -> Transaction:
    return Transaction(out_trade_no=f"BO{n}", transaction_id=f"4200{n:024d}", total=1000, paid_at=NOON,
                       openid="obench", payer_total=1000)


def refund(n: int) -> Refund:
    return Refund(refund_id=f"5030{n:025d}", out_refund_no=f"BR{n}", transaction_id=f"4200{n:024d}",
                  out_trade_no=f"BO{n}", refund=100, total=1000, reason=None, notify_url=None, created_at=NOON,
                  payer_total=1000, status="SUCCESS", success_at=NOON + 60)


def test_registered_payments_and_refunds_are_queryable_and_billed():
    store = Store("1900000109")
    store.register_ledger([txn(1), txn(2)], [refund(1)])
    assert store.transaction("BO2")["transaction_id"] == f"4200{2:024d}"
    assert store.query_refund("BR1").out_trade_no == "BO1"
    transactions, refunds = store.ledger()
    body, lines = bill.build(DAY, "ALL", transactions, refunds, appid="wx1", mchid="1900000109")
    assert lines == 3
    assert "`BR1" in body.decode()


@pytest.mark.parametrize("transactions,refunds", [
    ([txn(1)], []),  # already registered
    ([txn(3), txn(3)], []),  # twice in one call
    ([], [refund(1)]),  # refund already registered
])
def test_a_number_already_used_is_refused_and_nothing_is_kept(transactions, refunds):
    store = Store("1900000109")
    store.register_ledger([txn(1)], [refund(1)])
    with pytest.raises(ApiError) as err:
        store.register_ledger([txn(9), *transactions], refunds)
    assert err.value.status == 409
    assert store.transaction("BO9") is None and store.transaction("BO3") is None
    assert len(store.ledger()[0]) == 1 and len(store.ledger()[1]) == 1
