"""Sending refunds to WeChat Pay and booking what comes back: a submitted refund's answer,
a refusal, an outcome that is not known yet, and the abnormal-refund resolution. WeChat's
answers become domain ``Outcome``s here and go through ``transitions.apply_outcome``."""
from __future__ import annotations

from .. import metrics
from ..adapters.models import Order, Refund
from ..domain.enums import AbnormalRefundType, OfflineReason, RefundStatus
from ..domain.errors import ErrorCode, UpstreamUnavailable, conflict
from ..domain import refunds as refund_rules
from ..domain.refunds import Outcome
from . import edges
from ..log import get_logger, log_context
from . import transitions
from .outcomes import outcome_from_result
from .transitions import StaleState, apply_outcome, invalid_state
from ..domain import clock

S = RefundStatus
log = get_logger(__name__)


def submit(refund: Refund, *, actor: str, order: Order | None = None) -> Refund:
    """Send ``refund`` (status submitted) to WeChat under its refund_no and apply the answer.

    Outcome unknown (timeout, SYSTEM_ERROR, FREQUENCY_LIMITED, unverifiable answer) keeps it
    submitted with the balance reserved; the poller settles it with the same refund_no.
    """
    from ..adapters.wechat.errors import (ConfigurationError, InsufficientFunds, Rejected, RetryLater,
                                          UserAccountAbnormal, WechatError)
    from ..adapters.wechat.gateway import get_gateway  # lazy: only the paths that talk to WeChat load it

    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        try:
            result = edges.gateway().create_refund(
                out_refund_no=refund.refund_no, amount=refund.amount, total=refund.order_total,
                out_trade_no=refund.out_trade_no, transaction_id=refund.transaction_id,
                reason=refund.reason or None)
        except UserAccountAbnormal as err:
            return _book_offline(refund, actor, err)
        except InsufficientFunds as err:
            return _book_refusal(refund, actor, err, "商户账户余额不足，退款失败，可稍后重新发起")
        except Rejected as err:
            return _book_refusal(refund, actor, err, f"微信拒绝退款：{err.message}")
        except ConfigurationError as err:
            # our keys, merchant id or rights are wrong (a rotation mistake): hold the refund with
            # its amount reserved; once fixed, the poller finds it missing at WeChat and resends it
            log.error("wechat refused our configuration; refund held", extra={"code": err.code, "actor": actor})
            metrics.count(metrics.WECHAT_CONFIG_ERRORS)
            return _hold(refund, actor, f"微信配置错误（{err.code}），退款暂停、余额保留；配置修复后自动重试",
                         changes={"failure_code": err.code, "failure_message": err.message})
        except RetryLater as err:
            # not accepted now (e.g. WeChat's minute between two refunds of one order): send it again later
            # (the first check comes after poll_after_seconds, WeChat's minute by default)
            log.warning("wechat asked to retry later", extra={"code": err.code, "actor": actor})
            return _hold(refund, actor, f"微信要求稍后重试（{err.code}：{err.message}），将自动重新提交")
        except WechatError as err:  # outcome unknown: keep it reserved, poll it
            log.warning("refund outcome unknown; the poller will resolve it",
                        extra={"code": err.code, "actor": actor})
            return _hold(refund, actor, f"微信结果未知（{err.code}），等待查询")
        return apply_outcome(refund, outcome_from_result(result, "微信已受理退款"), actor=actor, order=order)


def _hold(refund: Refund, actor: str, detail: str, changes: dict | None = None) -> Refund:
    """Keep a refund submitted (its amount reserved) and record why; the poller comes back to it."""
    fields = transitions.work_for(S.SUBMITTED, clock.now())
    fields.update(changes or {})
    try:
        return transitions.transition(refund, S.SUBMITTED, actor=actor, detail=detail, changes=fields)
    except StaleState:
        return _reread(refund)


def _book_offline(refund: Refund, actor: str, err) -> Refund:
    """WeChat cannot refund to this player's account: the amount stays reserved and the refund
    waits for an operator to pay it another way (or cancel it), with a task that says so."""
    outcome = Outcome(status=S.OFFLINE_PENDING, failure_code=err.code, failure_message=err.message,
                      offline_reason=OfflineReason.USER_ACCOUNT_ABNORMAL.value,
                      detail=f"用户微信账户异常（{err.message}），需线下退款")
    log.warning("wechat cannot refund to the user's account; offline refund opened", extra={"code": err.code})
    metrics.count(metrics.OFFLINE_REFUNDS)
    try:
        return apply_outcome(refund, outcome, actor=actor)
    except StaleState:
        return _reread(refund)


def _book_refusal(refund: Refund, actor: str, err, detail: str) -> Refund:
    """WeChat refused the refund outright: it fails and its amount is refundable again; the
    person who asked sees why (409). A refusal nobody is watching (a resubmission by the poller
    or a batch) opens a task for finance. When WeChat can no longer refund the order at all (paid
    over a year ago), the refund is not failed: its amount stays reserved and it waits to be paid
    outside WeChat, which is the order's way out."""
    from ..adapters import repository as repo

    order = repo.get_order(refund.order_no)
    if order is not None and refund_rules.past_refund_window(order, clock.now()):
        outcome = Outcome(status=S.OFFLINE_PENDING, failure_code=err.code, failure_message=err.message,
                          offline_reason=OfflineReason.WINDOW_EXPIRED.value,
                          detail=f"{detail}；已超过支付后一年，微信不再受理：需线下退款")
        metrics.count(metrics.OFFLINE_REFUNDS)
    else:
        outcome = Outcome(status=S.FAILED, failure_code=err.code, failure_message=err.message, detail=detail)
    log.warning("wechat refused the refund", extra={"code": err.code, "actor": actor})
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
    from ..adapters.wechat.errors import Rejected, WechatError
    from ..adapters.wechat.gateway import get_gateway

    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        if refund.status != S.ABNORMAL.value:
            raise invalid_state(refund, "发起异常退款")
        try:
            result = edges.gateway().apply_abnormal_refund(
                refund_id=refund.wechat_refund_id, out_refund_no=refund.refund_no, type=kind.value,
                bank_type=bank_type, bank_account=bank_account, real_name=real_name)
        except Rejected as err:
            raise conflict(ErrorCode.WECHAT_REJECTED, f"微信拒绝了异常退款：{err.message}",
                           wechat_code=err.code) from None
        except WechatError as err:
            # WeChat may have accepted it: query soon rather than at the slow abnormal cadence
            log.warning("abnormal refund outcome unknown; polling it soon", extra={"code": err.code})
            transitions.check_soon(refund)
            raise UpstreamUnavailable("微信暂时无法受理，结果未知：请稍后刷新查看退款状态，仍为“退款异常”时再重试") from None
        return apply_outcome(refund, outcome_from_result(result, f"已发起异常退款（退至{kind.label}）"), actor=actor)
