"""Staff routes (roles support, finance, admin): orders, refunds, review, manual tasks, the
operator's own permissions and the activity log. Each route declares the one permission it needs
(domain/staff.py: the permission table); the use cases check what depends on the refund (who
may approve it, four-eyes, limits)."""
from __future__ import annotations

import re
from datetime import timedelta

from chalice import Blueprint

from ..domain import refunds as refund_rules
from ..domain import staff as staff_rules
from ..domain.enums import (AbnormalRefundType, OrderStatus, PayoutChannel, Permission as P, RefundStatus, SourceType,
                            TaskStatus, TaskType)
from ..domain.errors import invalid
from ..services import queries, refunds, search, staff, tasks, views
from ..domain import clock
from .http import (JSON_TYPES, csv_response, endpoint, format_param, idempotency_key, int_param, json_body, json_response,
                   limit_param, one_of, only_fields, query)

bp = Blueprint(__name__)


@bp.route("/orders", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def list_orders(principal):
    p = query(bp.current_request, {"status", "source_type", "user_id", "from", "to", "limit", "cursor"})
    user_id = p.get("user_id") or None
    return queries.list_orders(status=int_param(p, "status", enum=OrderStatus),
                              source_type=int_param(p, "source_type", enum=SourceType),
                              user_id=user_id, limit=limit_param(p), cursor=p.get("cursor"), created=_days(p))


@bp.route("/search", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def search_everything(principal):
    p = query(bp.current_request, {"q"})
    return search.search(p.get("q"), staff.operator(principal.actor))


@bp.route("/orders/{order_no}", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def order_detail(principal, order_no):
    return queries.order_detail(order_no, staff.operator(principal.actor))


@bp.route("/pay/refunds", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.REFUNDS_CREATE)
def create_refund(principal):
    request = bp.current_request
    body = only_fields(json_body(request), {"order_no", "amount", "reason"})
    order_no = _order_no(body.get("order_no"))
    amount = refund_rules.parse_amount(body.get("amount"))
    reason = refund_rules.parse_reason(body.get("reason"), required=False)
    created = refunds.create_admin_refund(actor=principal.actor, order_no=order_no, amount=amount,
                                          reason=reason, idempotency_key=idempotency_key(request))
    return json_response(_refund(principal, created.refund), 201 if created.created else 200)


@bp.route("/pay/refunds/preview", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.REFUNDS_PREVIEW)
def preview_refund(principal):
    body = only_fields(json_body(bp.current_request), {"order_no", "amount"})
    return refunds.preview(order_no=_order_no(body.get("order_no")), amount=refund_rules.parse_amount(body.get("amount")),
                           actor=principal.actor)


@bp.route("/pay/refunds", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def list_refunds(principal):
    p = query(bp.current_request, {"status", "order_no", "operator", "from", "to", "min_amount", "max_amount",
                                   "limit", "cursor", "order", "format"})
    status = p.get("status") or None
    if status is not None and status not in RefundStatus.labels():
        raise one_of("status", list(RefundStatus.labels()))
    sort = p.get("order") or "newest"
    if sort not in ("newest", "oldest"):
        raise one_of("order", ["newest", "oldest"])
    created_from, created_to = _days(p) or (None, None)
    min_amount = int_param(p, "min_amount", minimum=1, maximum=10**12, default=None)
    max_amount = int_param(p, "max_amount", minimum=1, maximum=10**12, default=None)
    if min_amount is not None and max_amount is not None and max_amount < min_amount:
        raise invalid("max_amount", "不能小于最小金额（min_amount）")
    f = queries.RefundFilter(status=status, order_no=p.get("order_no") or None,
                     created_by=staff.parse_operator(p["operator"]) if p.get("operator") else None,
                     created_from=created_from, created_to=created_to, min_amount=min_amount, max_amount=max_amount)
    operator = staff.operator(principal.actor)
    if format_param(p) == "csv":
        staff_rules.require(principal.staff_role, P.DATA_EXPORT)
        if sort != "newest":
            raise one_of("order", ["newest"])
        return csv_response(queries.export_refunds_csv(
            f, operator=operator, cursor=p.get("cursor"),
            limit=int_param(p, "limit", minimum=1, maximum=tasks.CSV_PAGE_ROWS, default=tasks.CSV_PAGE_ROWS)))
    return queries.list_refunds(f, oldest_first=sort == "oldest", limit=limit_param(p), cursor=p.get("cursor"),
                                operator=operator)


_USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@bp.route("/users/{user_id}/refunds", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def list_user_refunds(principal, user_id):
    """A player's refunds and applications over all their orders, newest first, each with its history."""
    p = query(bp.current_request, {"limit", "cursor"})
    if not _USER_ID.match(user_id):
        raise invalid("user_id", "不是有效的用户 ID")
    return queries.user_refunds(user_id, limit=limit_param(p), cursor=p.get("cursor"),
                                operator=staff.operator(principal.actor))


@bp.route("/minor-claims", methods=["GET"])
@endpoint(bp, "staff", P.APPLICATIONS_REVIEW)
def list_minor_claims(principal):
    """Minors' claims (未成年人消费) of one status, apart from ordinary refunds: their review queue
    (pending_review, the default) and their own report (any other status)."""
    p = query(bp.current_request, {"status", "limit", "cursor"})
    status = p.get("status") or RefundStatus.PENDING_REVIEW.value
    if status not in RefundStatus.labels():
        raise one_of("status", list(RefundStatus.labels()))
    return queries.minor_claims(status=status, limit=limit_param(p), cursor=p.get("cursor"),
                                operator=staff.operator(principal.actor))


@bp.route("/pay/refunds/{refund_no}", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def refund_detail(principal, refund_no):
    return queries.refund_detail(refund_no, staff.operator(principal.actor))


@bp.route("/pay/refunds/{refund_no}/approve", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.APPLICATIONS_REVIEW)
def approve_refund(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"amount"})
    amount = refund_rules.parse_amount(body["amount"]) if body.get("amount") is not None else None
    return _refund(principal, refunds.approve(actor=principal.actor, refund_no=refund_rules.validate_refund_no(refund_no),
                                              amount=amount))


@bp.route("/pay/refunds/{refund_no}/reject", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.APPLICATIONS_REVIEW)
def reject_refund(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"reason"})
    reason = refund_rules.parse_reason(body.get("reason"), required=True, sent_to_wechat=False)
    return _refund(principal, refunds.reject(actor=principal.actor, refund_no=refund_rules.validate_refund_no(refund_no),
                                             reason=reason))


@bp.route("/pay/refunds/{refund_no}/abnormal-refund", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.REFUNDS_RESOLVE)
def abnormal_refund(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"type", "bank_type", "bank_account", "real_name"})
    kind = _choice(body, "type", AbnormalRefundType)
    card = {}
    if kind == AbnormalRefundType.USER_BANK_CARD:
        for name in ("bank_type", "bank_account", "real_name"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > 64:
                raise invalid(name, "必填（退至用户银行卡时），最多 64 个字符")
            card[name] = value.strip()
    refund = refunds.resolve_abnormal(actor=principal.actor, refund_no=refund_rules.validate_refund_no(refund_no),
                                      kind=kind, **card)
    return _refund(principal, refund)


@bp.route("/pay/refunds/{refund_no}/offline-payout", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.REFUNDS_RESOLVE)
def offline_payout(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"channel", "reference", "paid_at", "note"})
    channel = _choice(body, "channel", PayoutChannel)
    reference = refund_rules.parse_reason(body.get("reference"), required=True, field_name="reference")
    if len(reference) > 64:
        raise invalid("reference", "最多 64 个字符")
    refund = refunds.record_offline_payout(
        actor=principal.actor, refund_no=refund_rules.validate_refund_no(refund_no), channel=channel,
        reference=reference, paid_at=_past_time(body.get("paid_at"), "paid_at"),
        note=refund_rules.parse_reason(body.get("note"), required=False, field_name="note") or None)
    return _refund(principal, refund)


@bp.route("/pay/refunds/{refund_no}/cancel-offline", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.REFUNDS_RESOLVE)
def cancel_offline(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"reason"})
    reason = refund_rules.parse_reason(body.get("reason"), required=True, sent_to_wechat=False)
    return _refund(principal, refunds.cancel_offline(actor=principal.actor,
                                                     refund_no=refund_rules.validate_refund_no(refund_no), reason=reason))


@bp.route("/manual-tasks", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def list_tasks(principal):
    p = query(bp.current_request, {"status", "type", "limit", "cursor", "format"})
    status = p.get("status") or TaskStatus.OPEN.value
    if status not in TaskStatus.labels():
        raise one_of("status", list(TaskStatus.labels()))
    task_type = p.get("type") or None
    if task_type is not None and task_type not in TaskType.labels():
        raise one_of("type", list(TaskType.labels()))
    if format_param(p) == "csv":
        staff_rules.require(principal.staff_role, P.DATA_EXPORT)
        return csv_response(tasks.export_csv(status=status, task_type=task_type, cursor=p.get("cursor"),
                                             limit=int_param(p, "limit", minimum=1, maximum=tasks.CSV_PAGE_ROWS,
                                                             default=tasks.CSV_PAGE_ROWS)))
    return tasks.list_tasks(status=status, task_type=task_type, limit=limit_param(p), cursor=p.get("cursor"))


@bp.route("/manual-tasks/{task_id}/done", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.TASKS_COMPLETE)
def finish_task(principal, task_id):
    body = only_fields(json_body(bp.current_request), {"note"})
    note = refund_rules.parse_reason(body.get("note"), required=False, field_name="note")
    return tasks.mark_done(task_id=task_id, actor=principal.actor, role=principal.staff_role, note=note)


@bp.route("/manual-tasks/{task_id}/reopen", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.TASKS_COMPLETE)
def reopen_task(principal, task_id):
    body = only_fields(json_body(bp.current_request), {"note"})
    note = refund_rules.parse_reason(body.get("note"), required=False, field_name="note")
    return tasks.reopen(task_id=task_id, actor=principal.actor, role=principal.staff_role, note=note)


@bp.route("/counts", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def backlog_counts(principal):
    query(bp.current_request, set())
    return queries.backlog()


@bp.route("/me", methods=["GET"])
@endpoint(bp, "staff", P.ORDERS_VIEW)
def who_am_i(principal):
    query(bp.current_request, set())
    return staff.me(principal)


@bp.route("/activity", methods=["GET"])
@endpoint(bp, "staff", P.ACTIVITY_VIEW)
def operator_activity(principal):
    p = query(bp.current_request, {"operator", "from", "to", "limit", "cursor", "format"})
    operator = staff.parse_operator(p.get("operator"))
    if format_param(p) == "csv":
        staff_rules.require(principal.staff_role, P.DATA_EXPORT)
        return csv_response(staff.export_activity_csv(
            operator=operator, start_day=p.get("from") or None, end_day=p.get("to") or None, cursor=p.get("cursor"),
            limit=int_param(p, "limit", minimum=1, maximum=staff.CSV_PAGE_ROWS, default=staff.CSV_PAGE_ROWS)))
    return staff.activity(operator=operator, start_day=p.get("from") or None, end_day=p.get("to") or None,
                          limit=limit_param(p), cursor=p.get("cursor"))


def _days(p: dict) -> tuple[str, str] | None:
    """``from``/``to`` (Beijing days, inclusive; one alone is that day) as the inclusive range of
    stored times they cover, or None when neither is given."""
    if not (p.get("from") or p.get("to")):
        return None
    today = clock.beijing_date(clock.now())
    start = staff_rules.parse_day(p.get("from") or p.get("to"), "from", today)
    end = staff_rules.parse_day(p.get("to") or p.get("from"), "to", today)
    first, last = staff_rules.day_range(start, end)
    return clock.iso(first), clock.iso(last - timedelta(microseconds=1))


def _refund(principal, refund) -> dict:
    """A refund as the signed-in operator sees it, with what they may do with it."""
    return views.refund_view(refund, staff.operator(principal.actor))


def _order_no(raw) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        raise invalid("order_no", "必填，最多 64 个字符")
    return raw.strip()


def _past_time(raw, field: str) -> str | None:
    """An optional ISO 8601 time with a zone, not in the future nor before clock.EARLIEST, as UTC text."""
    if raw is None or raw == "":
        return None
    from datetime import datetime

    try:
        if not isinstance(raw, str) or len(raw) > 40 or clock.calendar_day(raw[:10]) is None or raw[10:11] != "T":
            raise ValueError  # a calendar date and a time (not a week date, not a date alone)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError
    except ValueError:
        raise invalid(field, "必须是带时区的 ISO 8601 时间，如 2026-11-26T10:00:00+08:00") from None
    if value > clock.now():
        raise invalid(field, "不能晚于现在")
    if value < clock.EARLIEST:  # and year 1 cannot be written in UTC
        raise invalid(field, f"不能早于 {clock.EARLIEST_DAY}")
    return clock.iso(value)


def _choice(body: dict, field: str, enum):
    """A body field that must be one of ``enum``'s codes, as that enum member."""
    value = body.get(field)
    if not isinstance(value, str) or value not in enum.labels():
        raise one_of(field, list(enum.labels()))
    return enum(value)
