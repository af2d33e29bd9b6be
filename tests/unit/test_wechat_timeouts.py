"""WeChat Pay's timeouts are settings read in one place (``chalicelib.config``): the gateway's
client, the poller's time reserve and the bill download all follow them."""
from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.services import poller

WECHAT_ENV = {"WECHAT_MCHID": "1900000001", "WECHAT_APPID": "wx1", "WECHAT_CERT_SERIAL_NO": "ABC",
              "WECHAT_PRIVATE_KEY": "key", "WECHAT_APIV3_KEY": "k" * 32,
              "WECHAT_REFUND_NOTIFY_URL": "https://x/refund", "WECHAT_PAYMENT_NOTIFY_URL": "https://x/payment"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("WECHAT_TIMEOUT_SECONDS", "WECHAT_BILL_TIMEOUT_SECONDS", "WECHAT_PUBLIC_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in WECHAT_ENV.items():
        monkeypatch.setenv(name, value)


def test_defaults():
    assert config.wechat_timeout_seconds() == 5.0 and config.wechat_bill_timeout_seconds() == 60.0
    assert config.wechat_settings().timeout_seconds == 5.0


def test_one_setting_drives_the_client_and_the_pollers_reserve(monkeypatch):
    monkeypatch.setenv("WECHAT_TIMEOUT_SECONDS", "2.5")
    assert config.wechat_settings().timeout_seconds == 2.5
    assert poller.reserve_seconds() == poller.SECONDS_PER_REFUND_RESERVE * 2.5 + 1
    monkeypatch.setenv("WECHAT_TIMEOUT_SECONDS", "")  # empty is unset
    assert poller.reserve_seconds() == poller.SECONDS_PER_REFUND_RESERVE * 5 + 1


def test_the_bill_timeout(monkeypatch):
    monkeypatch.setenv("WECHAT_BILL_TIMEOUT_SECONDS", "600")
    assert config.wechat_bill_timeout_seconds() == 600.0


@pytest.mark.parametrize("name,raw", [("WECHAT_TIMEOUT_SECONDS", "five"), ("WECHAT_BILL_TIMEOUT_SECONDS", "1m"),
                                      ("WECHAT_BILL_TIMEOUT_SECONDS", "0"), ("WECHAT_BILL_TIMEOUT_SECONDS", "-3")])
def test_a_malformed_timeout_is_a_configuration_error_naming_it(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(config.ConfigError, match=name):
        config.wechat_timeout_seconds() if name == "WECHAT_TIMEOUT_SECONDS" else config.wechat_bill_timeout_seconds()
