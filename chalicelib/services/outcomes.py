"""The mapping from a WeChat refund result to a domain ``Outcome``: what a create, query,
notification or abnormal-refund answer means for the refund, applied by
``transitions.apply_outcome``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import refunds as refund_rules
from ..domain.enums import OfflineReason, RefundStatus
from ..domain.refunds import Outcome

if TYPE_CHECKING:  # pragma: no cover
    from ..adapters.wechat.results import RefundResult

S = RefundStatus


def outcome_from_result(result: "RefundResult", detail: str) -> Outcome:
    """A WeChat refund object (create, query, notification or abnormal-refund answer) as an
    outcome. SUCCESS paid to the merchant's own account (an abnormal refund re-routed to
    MERCHANT_BANK_CARD) has not reached the player: it is an offline refund to pay."""
    status = refund_rules.WECHAT_STATUS[result.status]
    offline = None
    if status == S.SUCCESS and result.paid_to_merchant:
        status, offline = S.OFFLINE_PENDING, OfflineReason.MERCHANT_BANK_CARD.value
        detail += "；款项退至商户银行卡，待线下退给用户"
    return Outcome(
        status=status,
        offline_reason=offline,
        wechat_refund_id=result.refund_id,
        user_received_account=result.user_received_account,
        success_time=result.success_time,
        accepted_at=result.create_time,
        amount=result.amount_refund,
        payer_refund=result.amount.payer_refund if result.amount is not None else None,
        raw=result.raw,
        detail=detail,
    )
