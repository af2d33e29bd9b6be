"""Player routes (role user): a player sees and acts on their own orders and refunds only."""
from __future__ import annotations

from chalice import Blueprint

from .. import config
from ..domain import minors
from ..domain import refunds as refund_rules
from ..domain.errors import invalid
from ..domain import subscriptions as subscription_rules
from ..services import queries, refunds, views
from .http import JSON_TYPES, endpoint, idempotency_key, json_body, json_response, limit_param, only_fields, query

bp = Blueprint(__name__)


@bp.route("/orders/{order_no}/refund/apply", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "user")
def apply_refund(principal, order_no):
    request = bp.current_request
    body = only_fields(json_body(request), {"amount", "reason", "subscriptions", "type", "guardian"})
    claim = _claim(body)
    amount = refund_rules.parse_amount(body.get("amount")) if claim is None or body.get("amount") is not None \
        else None  # a minor's claim is for the whole order
    reason = refund_rules.parse_reason(body.get("reason"), required=True)
    consents = subscription_rules.parse(body.get("subscriptions"), config.subscribe_settings().templates)
    created = refunds.apply_for_refund(user_id=principal.subject, order_no=order_no, amount=amount, reason=reason,
                                       idempotency_key=idempotency_key(request), subscriptions=consents,
                                       claim=claim)
    return json_response(views.player_refund_view(created.refund), 201 if created.created else 200)


def _claim(body: dict) -> dict | None:
    """``type: "minor"`` with ``guardian``: a guardian's claim (domain/minors.py); no type: ordinary."""
    kind = body.get("type")
    if kind is None:
        if body.get("guardian") is not None:
            raise invalid("guardian", "只用于未成年人消费退款（type = minor）")
        return None
    if kind != minors.TYPE:
        raise invalid("type", "只能是 minor（未成年人消费），或不填")
    return minors.parse_claim(body.get("guardian"))


@bp.route("/orders/{order_no}/refunds", methods=["GET"])
@endpoint(bp, "user")
def my_refunds(principal, order_no):
    return queries.player_refunds(principal.subject, order_no)


@bp.route("/refunds", methods=["GET"])
@endpoint(bp, "user")
def my_refund_list(principal):
    p = query(bp.current_request, {"limit", "cursor"})
    return queries.my_refunds(principal.subject, limit=limit_param(p), cursor=p.get("cursor"))


@bp.route("/refunds/{refund_no}/withdraw", methods=["POST"], content_types=JSON_TYPES)
@endpoint(bp, "user")
def withdraw_application(principal, refund_no):
    body = only_fields(json_body(bp.current_request), {"reason"})
    reason = refund_rules.parse_reason(body.get("reason"), required=False, sent_to_wechat=False) or "用户撤回申请"
    refund = refunds.withdraw_application(user_id=principal.subject,
                                          refund_no=refund_rules.validate_refund_no(refund_no), reason=reason)
    return views.player_refund_history(refund)


@bp.route("/subscription-templates", methods=["GET"])
@endpoint(bp, "user")
def subscription_templates(principal):
    """The template ids the mini-app asks the player to subscribe to, and what each tells of."""
    return {"items": subscription_rules.templates_view(config.subscribe_settings().templates)}
