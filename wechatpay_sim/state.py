"""Orders, refunds and scenario switches of the simulator (no I/O, thread-safe).

Every public method takes the store lock and returns copies, so the HTTP
threads, the outcome timers and the control API never share mutable objects.
Business-rule violations raise ``ApiError`` carrying WeChat's HTTP status and
error code.
"""
from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

from .crypto import rfc3339
from .records import OUTCOMES, Refund, Transaction

REFUND_WINDOW_SECONDS = 365 * 24 * 3600
MAX_REFUNDS_PER_ORDER = 50
MAX_REASON_BYTES = 80
# Where an abnormal refund re-routed with type MERCHANT_BANK_CARD lands: WeChat's
# user_received_account for money returned to the merchant ("退还商户") names the merchant's
# settlement bank account; channel OTHER_BANKCARD ("原银行卡异常退到其他银行卡").
MERCHANT_CARD_ACCOUNT = "商户结算银行账户"
MERCHANT_CARD_CHANNEL = "OTHER_BANKCARD"
USER_CARD_CHANNEL = "OTHER_BANKCARD"
# WeChat's refund rules (note 8): two refunds of one order need a minute between them.
# The answer WeChat gives is not documented; modelled as FREQUENCY_LIMITED (README).
DEFAULT_REFUND_INTERVAL_SECONDS = 60.0
SAME_ORDER_TOO_SOON = (429, "FREQUENCY_LIMITED", "同一笔订单的两次退款申请需间隔1分钟，请稍后再试")
_OUT_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,64}$")

# One-shot switches answered before anything is created: kind -> (HTTP status, code, message)
ERROR_SCENARIOS = {
    "SYSTEM_ERROR": (500, "SYSTEM_ERROR", "系统错误"),
    "FREQUENCY_LIMITED": (429, "FREQUENCY_LIMITED", "频率超限"),
    "NOT_ENOUGH": (403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起"),
    "USER_ACCOUNT_ABNORMAL": (403, "USER_ACCOUNT_ABNORMAL", "退款请求失败，用户帐号注销"),
    "PARAM_ERROR": (400, "PARAM_ERROR", "参数错误"),
    "NO_AUTH": (403, "NO_AUTH", "没有此单的退款权限"),
    # configuration failures as WeChat answers them (a key rotated on one side only, ...)
    "SIGN_ERROR": (401, "SIGN_ERROR", "签名错误，请检查签名参数和方法是否都符合签名算法要求"),
    "MCH_NOT_EXISTS": (404, "MCH_NOT_EXISTS", "商户号不存在"),
    # the request is lost before WeChat records it: 500, and a later query says 404
    "LOSE_REQUEST": (500, "SYSTEM_ERROR", "系统错误"),
}
# One-shot switches applied after the call has been processed normally
AFTER_SCENARIOS = (
    "SLOW",  # sleep `seconds` before answering (the refund is created meanwhile)
    "ACCEPT_THEN_ERROR",  # process the call, then answer 500 SYSTEM_ERROR
    "BAD_RESPONSE_SIGNATURE",  # sign the answer with a key WeChat does not own
    "MISSING_SIGNATURE_TYPE",  # leave out the Wechatpay-Signature-Type header
    "IMMEDIATE_SUCCESS",  # create: the refund is SUCCESS already in the create answer
    "IMMEDIATE_CLOSED",  # create: the refund is CLOSED already in the create answer
    "EXPIRED_URL",  # bill: the download_url handed out is expired; download: answered as expired once
)
SCENARIO_OPS = {"EXPIRED_URL": ("bill", "download")}  # kinds that mean something for some ops only
SCENARIO_KINDS = tuple(ERROR_SCENARIOS) + AFTER_SCENARIOS
OPS = ("create", "query", "abnormal", "query_payment", "bill", "download", "complaint", "any")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}


def json_body(body: bytes):
    """A request's JSON body ({} when empty); 400 PARAM_ERROR when it is not JSON."""
    if not body:
        return {}
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "PARAM_ERROR", "body is not valid JSON") from None


def _param_error(message: str) -> ApiError:
    return ApiError(400, "PARAM_ERROR", message)


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


@dataclass
class Scenario:
    kind: str
    op: str = "create"
    seconds: float = 0.0

    def matches(self, op: str) -> bool:
        return self.op in ("any", op)


def _check_fits(siblings: list, txn: Transaction, amount: int) -> None:
    """WeChat refuses a refund beyond what the order's open and settled refunds leave."""
    committed = sum(r.refund for r in siblings if r.status != "CLOSED")
    if committed + amount > txn.total:
        raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额 (refund amount exceeds)")


class Store:
    def __init__(
        self,
        mchid: str,
        *,
        default_outcome: str = "SUCCESS",
        clock=time.time,
        refund_interval_seconds: float = DEFAULT_REFUND_INTERVAL_SECONDS,
    ):
        self.mchid = mchid
        self._clock = clock
        self._lock = threading.RLock()
        self.default_outcome = default_outcome
        self.refund_interval_seconds = float(refund_interval_seconds)
        self.time_offset = 0.0
        self.reset()

    def now(self) -> float:
        """The ledger's time: real time, shifted by ``time_offset`` (a control setting, so a test
        can have WeChat accept a refund "yesterday" and settle it today)."""
        return self._clock() + self.time_offset

    # ---- control ---------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._transactions: dict[str, Transaction] = {}
            self._by_transaction_id: dict[str, Transaction] = {}
            self._refunds: dict[str, Refund] = {}
            self._by_refund_id: dict[str, Refund] = {}
            self._create_calls: dict[str, int] = {}
            self.create_calls_total = 0
            self._scenarios: deque[Scenario] = deque()
            self._next_outcomes: deque[str] = deque()
            self._bill_faults: list[dict] = []

    def register_transaction(
        self,
        out_trade_no: str,
        total: int,
        *,
        transaction_id: str | None = None,
        paid_at: float | None = None,
        openid: str | None = None,
        payer_total: int | None = None,
        state: str = "SUCCESS",
        appid: str | None = None,
        description: str | None = None,
    ) -> dict:
        """Record an order: paid (state SUCCESS, the default) or awaiting payment (NOTPAY);
        ``appid`` names another app of this merchant number (None: the merchant's own);
        ``description`` is its 商品名称 (commas and all: the bill does not quote it)."""
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise _param_error("total must be a positive integer (fen)")
        if not isinstance(out_trade_no, str) or not 1 <= len(out_trade_no) <= 32:
            raise _param_error("out_trade_no must be 1-32 characters")
        if payer_total is None:
            payer_total = total
        if not isinstance(payer_total, int) or isinstance(payer_total, bool) or not 0 < payer_total <= total:
            raise _param_error("payer_total must be an integer with 0 < payer_total <= total (fen)")
        if state not in ("SUCCESS", "NOTPAY"):
            raise _param_error("state must be SUCCESS (paid) or NOTPAY (awaiting payment)")
        if appid is not None and (not isinstance(appid, str) or not 1 <= len(appid) <= 32):
            raise _param_error("appid must be 1-32 characters")
        if description is not None and (not isinstance(description, str) or not 1 <= len(description) <= 127):
            raise _param_error("description must be 1-127 characters")
        with self._lock:
            existing = self._transactions.get(out_trade_no)
            if existing is not None:
                if existing.total != total or (transaction_id and transaction_id != existing.transaction_id) \
                        or (appid and appid != existing.appid):
                    raise ApiError(409, "CONFLICT", "out_trade_no already registered with other data")
                return existing.to_dict()
            paid = state == "SUCCESS"
            txn = Transaction(
                out_trade_no=out_trade_no,
                transaction_id=(transaction_id or "42000" + _digits(23)) if paid else "",
                total=total,
                paid_at=(self.now() if paid_at is None else float(paid_at)) if paid else None,
                openid=openid or "o" + secrets.token_urlsafe(20)[:27],
                payer_total=payer_total,
                state=state,
                appid=appid,
                **({"description": description} if description is not None else {}),
            )
            self._transactions[out_trade_no] = txn
            if txn.transaction_id:
                self._by_transaction_id[txn.transaction_id] = txn
            return txn.to_dict()

    def pay(
        self,
        out_trade_no: str,
        total: int | None = None,
        *,
        payer_total: int | None = None,
        paid_at: float | None = None,
    ) -> dict:
        """The payer pays ``out_trade_no``: a NOTPAY order becomes SUCCESS; an unknown one is
        created paid (WeChat pays whatever order the merchant's page asked it to, whatever the
        merchant thinks of that order meanwhile). Paying a paid order again changes nothing."""
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            if txn is None:
                if total is None:
                    raise _param_error("total is required for an order the simulator does not know")
                return self.register_transaction(
                    out_trade_no, total, paid_at=paid_at, payer_total=payer_total
                )
            if total is not None and total != txn.total:
                raise ApiError(409, "CONFLICT", "out_trade_no already registered with another total")
            if txn.state == "NOTPAY":
                if payer_total is not None:
                    if not isinstance(payer_total, int) or not 0 < payer_total <= txn.total:
                        raise _param_error("payer_total must be an integer with 0 < payer_total <= total")
                    txn.payer_total = payer_total
                txn.state = "SUCCESS"
                txn.transaction_id = "42000" + _digits(23)
                txn.paid_at = self.now() if paid_at is None else float(paid_at)
                self._by_transaction_id[txn.transaction_id] = txn
            elif txn.state != "SUCCESS":
                raise ApiError(400, "ORDER_CLOSED", f"订单已关闭 ({txn.state})")
            return txn.to_dict()

    def close_transaction(self, out_trade_no: str) -> dict:
        """Close an unpaid order (as the close-order API does)."""
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            if txn is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            if txn.state == "SUCCESS":
                raise ApiError(400, "ORDERPAID", "订单已支付")
            txn.state = "CLOSED"
            return txn.to_dict()

    def trade_state(self, txn: Transaction) -> str:
        """SUCCESS turns to REFUND once a refund of the order has been accepted."""
        if txn.state == "SUCCESS" and any(
            r.transaction_id == txn.transaction_id and r.status != "CLOSED" for r in self._refunds.values()
        ):
            return "REFUND"
        return txn.state

    def query_transaction(
        self, appid: str, *, out_trade_no: str | None = None, transaction_id: str | None = None
    ) -> dict:
        """The answer of the payment query API (404 ORDER_NOT_EXIST when unknown)."""
        with self._lock:
            if transaction_id is not None:
                txn = self._by_transaction_id.get(transaction_id)
            else:
                txn = self._transactions.get(out_trade_no or "")
            if txn is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            return txn.payment_resource(appid, self.mchid, self.trade_state(txn))

    def refunded_total(self, transaction_id: str) -> int:
        """Fen refunded so far (SUCCESS refunds) on one transaction."""
        with self._lock:
            return sum(r.refund for r in self._refunds.values()
                       if r.transaction_id == transaction_id and r.status == "SUCCESS")

    def transaction_object(self, out_trade_no: str) -> Transaction | None:
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            return copy.deepcopy(txn) if txn else None

    def transactions(self) -> list[dict]:
        with self._lock:
            return [t.to_dict() for t in self._transactions.values()]

    def transaction(self, out_trade_no: str) -> dict | None:
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            return txn.to_dict() if txn else None

    def push_scenario(self, kind: str, *, op: str = "create", count: int = 1, seconds: float = 0.0) -> None:
        if kind not in SCENARIO_KINDS:
            raise _param_error(f"unknown scenario {kind!r}; one of {', '.join(SCENARIO_KINDS)}")
        if op not in OPS:
            raise _param_error(f"unknown op {op!r}; one of {', '.join(OPS)}")
        if kind in SCENARIO_OPS and op not in SCENARIO_OPS[kind]:
            raise _param_error(f"{kind} needs op {' or '.join(SCENARIO_OPS[kind])}")
        with self._lock:
            for _ in range(count):
                self._scenarios.append(Scenario(kind, op, float(seconds)))

    def take_scenario(self, op: str) -> Scenario | None:
        with self._lock:
            for i, scenario in enumerate(self._scenarios):
                if scenario.matches(op):
                    del self._scenarios[i]
                    return scenario
        return None

    def clear_scenarios(self) -> None:
        with self._lock:
            self._scenarios.clear()
            self._next_outcomes.clear()

    def queue_outcome(self, outcome: str, count: int = 1) -> None:
        if outcome not in OUTCOMES:
            raise _param_error(f"outcome must be one of {OUTCOMES}")
        with self._lock:
            self._next_outcomes.extend([outcome] * count)

    def scenarios(self) -> dict:
        with self._lock:
            return {
                "queue": [asdict(s) for s in self._scenarios],
                "next_outcomes": list(self._next_outcomes),
                "default_outcome": self.default_outcome,
            }

    def refunds(self) -> list[dict]:
        with self._lock:
            return [r.to_control() for r in self._refunds.values()]

    def refund(self, out_refund_no: str) -> dict | None:
        with self._lock:
            r = self._refunds.get(out_refund_no)
            return r.to_control() if r else None

    def get(self, out_refund_no: str) -> Refund | None:
        with self._lock:
            r = self._refunds.get(out_refund_no)
            return copy.deepcopy(r) if r else None

    def create_calls(self, out_refund_no: str | None = None) -> int:
        with self._lock:
            if out_refund_no is None:
                return self.create_calls_total
            return self._create_calls.get(out_refund_no, 0)

    def counters(self) -> dict:
        with self._lock:
            return {
                "create_calls_total": self.create_calls_total,
                "create_calls": dict(self._create_calls),
                "refund_count": len(self._refunds),
            }

    # ---- API -------------------------------------------------------------
    def count_create_call(self, payload: object) -> None:
        """Count a create request that reached WeChat (after authentication)."""
        with self._lock:
            self.create_calls_total += 1
            if isinstance(payload, dict) and isinstance(payload.get("out_refund_no"), str):
                no = payload["out_refund_no"]
                self._create_calls[no] = self._create_calls.get(no, 0) + 1
                if no in self._refunds:
                    self._refunds[no].create_calls += 1

    def create_refund(self, payload: object) -> tuple[Refund, bool]:
        """Apply for a refund; returns (copy of the refund, newly created?)."""
        if not isinstance(payload, dict):
            raise _param_error("body must be a JSON object")
        out_refund_no = payload.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not _OUT_NO.match(out_refund_no):
            raise _param_error("out_refund_no is required: 1-64 of [A-Za-z0-9_-|*@]")
        amount = payload.get("amount")
        if not isinstance(amount, dict):
            raise _param_error("amount is required")
        refund, total = amount.get("refund"), amount.get("total")
        for name, value in (("amount.refund", refund), ("amount.total", total)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise _param_error(f"{name} must be a positive integer")
        if amount.get("currency", "CNY") != "CNY":
            raise _param_error("amount.currency must be CNY")
        if refund > total:
            raise _param_error("amount.refund must not exceed amount.total")
        reason = payload.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason.encode()) > MAX_REASON_BYTES):
            raise _param_error("reason must be a string of at most 80 bytes")
        notify_url = payload.get("notify_url")
        if notify_url is not None and (
            not isinstance(notify_url, str) or not notify_url.startswith(("http://", "https://")) or "?" in notify_url
        ):
            raise _param_error("notify_url must be an absolute URL without a query string")
        transaction_id, out_trade_no = payload.get("transaction_id"), payload.get("out_trade_no")
        if not transaction_id and not out_trade_no:
            raise _param_error("transaction_id or out_trade_no is required")

        with self._lock:
            if transaction_id:
                txn = self._by_transaction_id.get(transaction_id)
                if txn is not None and out_trade_no and txn.out_trade_no != out_trade_no:
                    txn = None
            else:
                txn = self._transactions.get(out_trade_no)
            if txn is None or txn.state != "SUCCESS":  # unpaid orders cannot be refunded
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")

            existing = self._refunds.get(out_refund_no)
            if existing is not None:
                if existing.transaction_id != txn.transaction_id or existing.refund != refund:
                    raise ApiError(400, "INVALID_REQUEST", "out_refund_no already used with different parameters")
                return copy.deepcopy(existing), False

            if total != txn.total:
                raise _param_error("amount.total does not match the order total")
            now = self.now()
            if now - txn.paid_at > REFUND_WINDOW_SECONDS:
                raise ApiError(400, "INVALID_REQUEST", "订单已超过退款期限 (365 days)")
            siblings = [r for r in self._refunds.values() if r.transaction_id == txn.transaction_id]
            if len(siblings) >= MAX_REFUNDS_PER_ORDER:
                raise ApiError(400, "INVALID_REQUEST", "部分退款次数超过50次")
            _check_fits(siblings, txn, refund)
            last = max((r.created_at for r in siblings), default=None)
            if last is not None and now - last < self.refund_interval_seconds:
                raise ApiError(*SAME_ORDER_TOO_SOON)

            outcome = self._next_outcomes.popleft() if self._next_outcomes else self.default_outcome
            r = self._add_refund(txn, out_refund_no, refund, now, outcome, reason=reason, notify_url=notify_url,
                                 create_calls=self._create_calls.get(out_refund_no, 0))
            return copy.deepcopy(r), True

    def _add_refund(self, txn: Transaction, out_refund_no: str, amount: int, now: float, outcome: str, *,
                    reason: str | None = None, notify_url: str | None = None, create_calls: int = 0) -> Refund:
        """A new refund of ``txn``, PROCESSING with ``outcome`` pending, in the ledger (lock held)."""
        r = Refund(
            refund_id="5030" + _digits(25),
            out_refund_no=out_refund_no,
            transaction_id=txn.transaction_id,
            out_trade_no=txn.out_trade_no,
            refund=amount,
            total=txn.total,
            reason=reason,
            notify_url=notify_url,
            created_at=now,
            payer_total=txn.payer_total,
            pending_outcome=outcome,
            create_calls=create_calls,
        )
        r.history.append(["PROCESSING", rfc3339(now)])
        self._refunds[out_refund_no] = r
        self._by_refund_id[r.refund_id] = r
        return r

    def foreign_refund(
        self, out_trade_no: str, amount: int, *, out_refund_no: str | None = None, status: str = "SUCCESS"
    ) -> Refund:
        """A refund made outside this merchant's API calls (the merchant platform, another
        system): recorded and settled at once, with WeChat's usual checks on the order."""
        if status not in OUTCOMES:
            raise _param_error(f"status must be one of {OUTCOMES}")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise _param_error("amount must be a positive integer (fen)")
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            if txn is None or txn.state != "SUCCESS":
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            no = out_refund_no or "PLATFORM" + _digits(20)
            if no in self._refunds:
                raise ApiError(409, "CONFLICT", "out_refund_no already used")
            _check_fits([r for r in self._refunds.values() if r.transaction_id == txn.transaction_id], txn, amount)
            self._add_refund(txn, no, amount, self.now(), status)
            return self.settle(no, status)  # type: ignore[return-value]

    def register_ledger(self, transactions: list[Transaction], refunds: list[Refund]) -> None:
        """Put already-built transactions and refunds into the ledger at once, under one lock
        (benchmarks seed hundreds of thousands). Numbers already in the ledger are refused
        (409) and nothing of the call is kept."""
        with self._lock:
            txn_nos = {t.out_trade_no for t in transactions}
            refund_nos = {r.out_refund_no for r in refunds}
            if (len(txn_nos) != len(transactions) or len(refund_nos) != len(refunds)
                    or not txn_nos.isdisjoint(self._transactions) or not refund_nos.isdisjoint(self._refunds)):
                raise ApiError(409, "CONFLICT", "out_trade_no or out_refund_no already registered")
            for t in transactions:
                self._transactions[t.out_trade_no] = t
                if t.transaction_id:
                    self._by_transaction_id[t.transaction_id] = t
            for r in refunds:
                self._refunds[r.out_refund_no] = r
                self._by_refund_id[r.refund_id] = r

    # ---- trade bill ------------------------------------------------------
    def ledger(self) -> tuple[list[Transaction], list[Refund]]:
        """Copies of every transaction and refund (for the trade bill)."""
        with self._lock:
            return copy.deepcopy(list(self._transactions.values())), copy.deepcopy(list(self._refunds.values()))

    def add_bill_fault(self, fault: dict) -> list[dict]:
        from .bill import check_fault  # no cycle at import time

        fault = check_fault(fault)
        with self._lock:
            self._bill_faults.append(fault)
            return copy.deepcopy(self._bill_faults)

    def bill_faults(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._bill_faults)

    def clear_bill_faults(self) -> None:
        with self._lock:
            self._bill_faults.clear()

    def query_refund(self, out_refund_no: str) -> Refund:
        with self._lock:
            r = self._refunds.get(out_refund_no)
            if r is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            r.query_calls += 1
            return copy.deepcopy(r)

    def apply_abnormal(self, refund_id: str, payload: object, *, account: str, channel: str) -> Refund:
        """Re-route an ABNORMAL refund; ``account``/``channel`` say where the money will land."""
        if not isinstance(payload, dict):
            raise _param_error("body must be a JSON object")
        with self._lock:
            r = self._by_refund_id.get(refund_id)
            if r is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            if payload.get("out_refund_no") != r.out_refund_no:
                raise _param_error("out_refund_no does not match refund_id")
            if r.status != "ABNORMAL":
                raise ApiError(400, "INVALID_REQUEST", f"退款单状态不是ABNORMAL ({r.status})")
            r.status = "PROCESSING"
            r.version += 1
            r.abnormal_applications += 1
            r.pending_outcome = self._next_outcomes.popleft() if self._next_outcomes else "SUCCESS"
            r.pending_account = account
            r.pending_channel = channel
            r.history.append(["PROCESSING", rfc3339(self.now())])
            return copy.deepcopy(r)

    def settle(self, out_refund_no: str, outcome: str | None = None, *, version: int | None = None,
               at: float | None = None) -> Refund | None:
        """End the PROCESSING phase of a refund.

        ``outcome`` None means the one chosen when the phase started. With
        ``version`` set (timers), a refund that moved on meanwhile is left alone.
        ``at`` (epoch seconds, not before its acceptance) is when it happened, for a refund
        that settles on a later day than it was accepted; default now. Returns a copy of the
        settled refund, or None if nothing changed.
        """
        if outcome is not None and outcome not in OUTCOMES:
            raise _param_error(f"outcome must be one of {OUTCOMES}")
        with self._lock:
            r = self._refunds.get(out_refund_no)
            if r is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            if r.status != "PROCESSING" or (version is not None and version != r.version):
                return None
            when = self.now() if at is None else float(at)
            if when < r.created_at:
                raise _param_error("at must not be before the refund was accepted (create_time)")
            r.status = outcome or r.pending_outcome
            r.version += 1
            if r.status == "SUCCESS":
                r.success_at = when
                if r.pending_account:
                    r.user_received_account = r.pending_account
                    r.channel = r.pending_channel or r.channel
            r.history.append([r.status, rfc3339(when)])
            return copy.deepcopy(r)
