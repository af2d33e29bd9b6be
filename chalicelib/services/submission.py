"""Sending refunds to WeChat Pay and booking what comes back: a submitted refund's answer,
a refusal, an outcome that is not known yet, and the abnormal-refund resolution. WeChat's
answers become domain ``Outcome``s here and go through ``transitions.apply_outcome``."""
from __future__ import annotations

from ..adapters.models import Order, Refund
from ..domain import refunds as rules
from ..domain.enums import AbnormalRefundType, RefundStatus
from ..domain.errors import ErrorCode, UpstreamUnavailable, conflict
from ..domain.refunds import Outcome, now_utc
from ..log import get_logger, log_context
from . import transitions
from .transitions import StaleState, apply_outcome, invalid_state

S = RefundStatus
log = get_logger(__name__)


def _wechat():
    from ..adapters import wechat  # lazy: loads the WeChat SDK only on the paths that talk to WeChat

    return wechat


def outcome_from_result(result, detail: str) -> Outcome:
    """A WeChat refund object (create, query or abnormal-refund answer) as an outcome."""
    return Outcome(
        status=rules.WECHAT_STATUS[result.status],
        wechat_refund_id=result.refund_id,
        user_received_account=result.user_received_account,
        success_time=result.success_time,
        amount=result.amount_refund,
        raw=result.raw,
        detail=detail,
    )


def submit(refund: Refund, *, actor: str, order: Order | None = None) -> Refund:
    """Send ``refund`` (status submitted) to WeChat under its refund_no and apply the answer.

    Outcome unknown (timeout, SYSTEM_ERROR, FREQUENCY_LIMITED, unverifiable answer) keeps it
    submitted with the balance reserved; the poller settles it with the same refund_no.
    """
    wechat = _wechat()
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        try:
            result = wechat.get_gateway().create_refund(
                out_refund_no=refund.refund_no, amount=refund.amount, total=refund.order_total,
                out_trade_no=refund.out_trade_no, transaction_id=refund.transaction_id,
                reason=refund.reason or None)
        except wechat.InsufficientFunds as err:
            return _book_refusal(refund, actor, err, "商户账户余额不足，退款失败，可稍后重新发起")
        except wechat.Rejected as err:
            return _book_refusal(refund, actor, err, f"微信拒绝退款：{err.message}")
        except wechat.WechatError as err:  # outcome unknown: keep it reserved, poll it
            log.warning("refund outcome unknown; the poller will resolve it",
                        extra={"code": err.code, "actor": actor})
            try:
                return transitions.transition(refund, S.SUBMITTED, actor=actor,
                                              detail=f"微信结果未知（{err.code}），等待查询",
                                              changes=transitions.work_for(S.SUBMITTED, now_utc()))
            except StaleState:
                return _reread(refund)
        return apply_outcome(refund, outcome_from_result(result, "微信已受理退款"), actor=actor, order=order)


def _book_refusal(refund: Refund, actor: str, err, detail: str) -> Refund:
    """WeChat refused the refund outright: it fails and its amount is refundable again."""
    outcome = Outcome(status=S.FAILED, failure_code=err.code, failure_message=err.message, detail=detail)
    log.warning("wechat refused the refund", extra={"code": err.code})
    try:
        return apply_outcome(refund, outcome, actor=actor)
    except StaleState:
        return _reread(refund)


def _reread(refund: Refund) -> Refund:
    from ..adapters import repository as repo

    return repo.get_refund(refund.refund_no)


def resolve_abnormal(refund: Refund, *, actor: str, kind: AbnormalRefundType, bank_type: str | None = None,
                     bank_account: str | None = None, real_name: str | None = None) -> Refund:
    """An abnormal refund (the player's card was cancelled or frozen) is sent again to a
    card the operator names, through WeChat's apply-abnormal-refund. The card number and
    name are encrypted for WeChat by the gateway and never stored or logged here."""
    wechat = _wechat()
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        if refund.status != S.ABNORMAL.value:
            raise invalid_state(refund, "发起异常退款")
        try:
            result = wechat.get_gateway().apply_abnormal_refund(
                refund_id=refund.wechat_refund_id, out_refund_no=refund.refund_no, type=kind.value,
                bank_type=bank_type, bank_account=bank_account, real_name=real_name)
        except wechat.Rejected as err:
            raise conflict(ErrorCode.WECHAT_REJECTED, f"微信拒绝了异常退款：{err.message}",
                           wechat_code=err.code) from None
        except wechat.WechatError as err:
            # WeChat may have accepted it: query soon rather than at the slow abnormal cadence
            log.warning("abnormal refund outcome unknown; polling it soon", extra={"code": err.code})
            transitions.check_soon(refund)
            raise UpstreamUnavailable("微信结果未知，请稍后刷新；仍为退款异常时再重试") from None
        return apply_outcome(refund, outcome_from_result(result, f"已发起异常退款（退至{kind.label}）"), actor=actor)
