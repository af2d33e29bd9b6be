"""Through the stack: a player applies, withdraws, applies again and is approved; the poll
schedule sends one subscription message per consent (seen at the simulator's
GET /sim/subscribe-messages), and every change of the refunds is on the event bus once, in order."""
import requests

from devstack.driver import LambdaContext, schedule_event

REVIEW, ARRIVED = "TPL-REVIEW-RESULT", "TPL-REFUND-ARRIVED"


def _apply(env, order_no, subscriptions):
    return env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user("u1001"),
                        {"amount": 1000, "reason": "不想要了", "subscriptions": subscriptions})


def _grant(env, template_id):
    r = requests.post(f"{env.sim.base_url}/sim/subscriptions", json={"openid": "oSIM-u1001", "template_id": template_id},
                      timeout=5)
    assert r.status_code == 200, r.text


def test_apply_withdraw_apply_approve_one_message_per_consent(env):
    templates = env.api.get("/api/app/subscription-templates", env.user("u1001"))
    assert templates.status_code == 200
    assert {t["template_id"]: t["events"] for t in templates.json()["items"]} == {
        REVIEW: ["approved", "rejected"], ARRIVED: ["refunded", "paid_offline"]}
    o = env.order(1)
    bad = _apply(env, o.order_no, {"TPL-NOPE": "accept"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"

    _grant(env, REVIEW)
    first = _apply(env, o.order_no, {"errMsg": "requestSubscribeMessage:ok", REVIEW: "accept", ARRIVED: "reject"})
    assert first.status_code == 201, first.text
    first_no = first.json()["refund_no"]
    assert env.api.post(f"/api/app/refunds/{first_no}/withdraw", env.user("u1001"), {}).status_code == 200

    _grant(env, REVIEW)
    _grant(env, ARRIVED)
    second = _apply(env, o.order_no, {REVIEW: "accept", ARRIVED: "accept"})
    assert second.status_code == 201, second.text
    second_no = second.json()["refund_no"]
    assert env.api.post(f"/api/admin/pay/refunds/{second_no}/approve", env.admin, {}).status_code == 200
    env.wait_status(second_no, "success")

    result = env.stack.handlers().poll(schedule_event("ap-east-1"), LambdaContext("poll"))
    assert result["messages"] == {"sent": 3, "retried": 0, "given_up": 0}
    sent = requests.get(f"{env.sim.base_url}/sim/subscribe-messages", timeout=5).json()["messages"]
    per_refund = sorted((m["data"]["character_string3"]["value"], m["template_id"], m["data"]["thing1"]["value"])
                        for m in sent)
    assert per_refund == sorted([(first_no, REVIEW, "退款申请未通过"), (second_no, REVIEW, "退款申请已通过"),
                                 (second_no, ARRIVED, "退款已到账")])
    again = env.stack.handlers().poll(schedule_event("ap-east-1"), LambdaContext("poll"))
    assert again["messages"]["sent"] == 0

    told = env.stack.published_events()
    changes = [(e["detail"]["refund_no"], e["detail"]["to_status"], e["detail"]["seq"], e["detail"]["schema_version"])
               for e in told if e["detail-type"] == "RefundStatusChanged"]
    assert [c[1:] for c in changes if c[0] == first_no] == [("pending_review", 0, 1), ("rejected", 1, 1)]
    assert [c[1] for c in changes if c[0] == second_no] == ["pending_review", "submitted", "processing", "success"]
    assert len(changes) == len(set(changes))
