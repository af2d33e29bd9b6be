"""Merchant order numbers (``out_trade_no``) as WeChat Pay takes them. Plain Python.

API v3 (JSAPI/小程序下单, pay.weixin.qq.com/docs/merchant/products/mini-program-payment/apilist.html):
"商户订单号 商户系统内部订单号，要求6-32个字符内，只能是数字、大小写字母_-|* 且在同一个商户号下唯一".
Every number this service sends to WeChat (a refund, a payment query) or accepts from its v3
answers and notifications must follow it: anything else is refused before it leaves, and an
answer or notification naming one is not about an order of ours.

The trade bill covers the whole merchant number, orders made through the older API v2 included,
whose rule had no minimum length (统一下单 v2: "商户系统内部订单号，要求32个字符内，只能是数字、
大小写字母_-|* 且在同一个商户号下唯一"). A bill line may therefore carry a number of 1-5 characters
(never one of ours); only a number no version allows means the file is not what WeChat wrote.
"""
from __future__ import annotations

import re

RULE = "6-32 位数字、大小写字母或 _-|*"
_V3 = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")
_ANY_VERSION = re.compile(r"[A-Za-z0-9_\-|*]{1,32}")


def valid_out_trade_no(out_trade_no: object) -> bool:
    """A number API v3 takes: 6-32 characters of [A-Za-z0-9_-|*]."""
    return isinstance(out_trade_no, str) and _V3.fullmatch(out_trade_no) is not None


def billable_out_trade_no(out_trade_no: object) -> bool:
    """A number some version of the API took, so a trade bill may list it: 1-32 characters of
    [A-Za-z0-9_-|*] (API v2 had no minimum length)."""
    return isinstance(out_trade_no, str) and _ANY_VERSION.fullmatch(out_trade_no) is not None


def why_invalid(out_trade_no: object) -> str:
    """A person's reason (Chinese) why ``out_trade_no`` is not a number WeChat takes."""
    return f"商户订单号 {out_trade_no!r} 不符合微信支付规则（{RULE}）"
