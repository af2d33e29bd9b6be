"""Player routes (role user): a player sees and acts on their own orders only."""
from __future__ import annotations

from chalice import Blueprint

from ..domain import refunds as refund_rules
from ..services import queries, refunds, views
from .http import JSON_TYPES, endpoint, idempotency_key, json_body, json_response, only_fields

bp = Blueprint(__name__)


@bp.route("/orders/{order_no}/refund/apply", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "user")
def apply_refund(principal, order_no):
    request = bp.current_request
    body = only_fields(json_body(request), {"amount", "reason"})
    amount = refund_rules.parse_amount(body.get("amount"))
    reason = refund_rules.parse_reason(body.get("reason"), required=True)
    created = refunds.apply_for_refund(user_id=principal.subject, order_no=order_no, amount=amount, reason=reason,
                                       idempotency_key=idempotency_key(request))
    return json_response(views.player_refund_view(created.refund), 201 if created.created else 200)


@bp.route("/orders/{order_no}/refunds", methods=["GET"])
@endpoint(bp, "user")
def my_refunds(principal, order_no):
    return queries.player_refunds(principal.subject, order_no)
