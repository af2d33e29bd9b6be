"""Staff routes of the 投诉 desk (consumer complaints): the queue, one complaint, and the actions
reply, refund, reject and complete. Each action answers the complaint as it stands afterwards
(WeChat's state read again); a retry of the same request does it once."""
from __future__ import annotations

from chalice import Blueprint

from ..domain import complaints as complaint_rules
from ..domain import refunds as refund_rules
from ..domain.enums import Permission as P
from ..services import complaint_views, complaints, staff
from .http import JSON_TYPES, endpoint, json_body, limit_param, only_fields, query

bp = Blueprint(__name__)
# a reply or refusal carries up to 4 images as base64 text: its body may be up to
# IMAGE_BODY_BYTES (entrypoints/contract.py lets these routes' bodies through)
IMAGE_ROUTES = ("/api/admin/complaints/{complaint_id}/reply", "/api/admin/complaints/{complaint_id}/reject")


def _detail(principal, complaint) -> dict:
    return complaint_views.complaint_detail(complaint.complaint_id, staff.operator(principal.actor),
                                            complaint=complaint)


def _with_images(principal, complaint_id, field: str, parse, act) -> dict:
    """A reply or refusal: its text ``field`` and up to 4 base64 images."""
    body = only_fields(json_body(bp.current_request, max_bytes=complaint_rules.IMAGE_BODY_BYTES), {field, "images"})
    done = act(actor=principal.actor, complaint_id=complaint_id, images=complaint_rules.parse_images(body.get("images")),
               **{field: parse(body.get(field))})
    return _detail(principal, done)


@bp.route("/", methods=["GET"])
@endpoint(bp, "staff", P.COMPLAINTS_VIEW)
def list_complaints(principal):
    p = query(bp.current_request, {"state", "deadline", "order_no", "limit", "cursor"})
    return complaint_views.list_complaints(state=p.get("state") or None, deadline=p.get("deadline") or None,
                                           order_no=p.get("order_no") or None, limit=limit_param(p),
                                           cursor=p.get("cursor"), role=principal.staff_role)


@bp.route("/{complaint_id}", methods=["GET"])
@endpoint(bp, "staff", P.COMPLAINTS_VIEW)
def complaint_detail(principal, complaint_id):
    query(bp.current_request, set())
    return complaint_views.complaint_detail(complaint_id, staff.operator(principal.actor))


@bp.route("/{complaint_id}/reply", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.COMPLAINTS_HANDLE)
def reply(principal, complaint_id):
    return _with_images(principal, complaint_id, "content", complaint_rules.parse_reply, complaints.reply)


@bp.route("/{complaint_id}/refund", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.COMPLAINTS_HANDLE)
def refund(principal, complaint_id):
    body = only_fields(json_body(bp.current_request), {"amount", "reason"})
    done = complaints.refund(actor=principal.actor, complaint_id=complaint_id,
                             amount=refund_rules.parse_amount(body.get("amount")),
                             reason=refund_rules.parse_reason(body.get("reason"), required=True))
    return _detail(principal, done)


@bp.route("/{complaint_id}/reject", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.COMPLAINTS_HANDLE)
def reject(principal, complaint_id):
    return _with_images(principal, complaint_id, "reason", complaint_rules.parse_reason, complaints.reject)


@bp.route("/{complaint_id}/complete", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "staff", P.COMPLAINTS_HANDLE)
def complete(principal, complaint_id):
    only_fields(json_body(bp.current_request), set())
    return _detail(principal, complaints.complete(actor=principal.actor, complaint_id=complaint_id))
