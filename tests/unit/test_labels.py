"""domain/labels.py: the Chinese names of task-detail fields and WeChat's words, served once."""
import json

from chalicelib.domain import labels


def test_every_field_has_a_chinese_label_and_a_known_kind():
    for key, (label, kind) in labels.DETAIL_FIELDS.items():
        assert kind in {"fen", "time", "wechat", "actor", "text"}, key
        assert label and not label.isascii(), key


def test_wechat_words_differ_by_field():
    cat = labels.catalogue()["wechat"]
    assert cat["status"]["SUCCESS"] == "退款成功" and cat["trade_state"]["SUCCESS"] == "支付成功"
    assert cat["event_type"]["REFUND.SUCCESS"] == "退款成功通知"
    assert {f for f, (_, kind) in labels.DETAIL_FIELDS.items() if kind == "wechat"} == set(cat)


def test_the_console_page_carries_them():
    from chalicelib.entrypoints.console import catalogue_json

    served = json.loads(catalogue_json())["details"]
    assert served["fields"]["refund_id"]["label"] == "微信退款单号"
    assert served["actors"]["poller"] == "主动查询微信"
