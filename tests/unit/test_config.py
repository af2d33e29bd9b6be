"""Secrets from SSM are cached for a while, not for the container's life: a rotated secret is
picked up without a cold start, and a brief SSM outage does not fail requests."""
import pytest

from chalicelib import config


class FakeSsm:
    def __init__(self):
        self.value, self.calls, self.down = "v1", 0, False

    def get_parameter(self, Name, WithDecryption):
        self.calls += 1
        if self.down:
            raise ConnectionError("ssm unreachable")
        return {"Parameter": {"Name": Name, "Value": self.value}}


@pytest.fixture
def ssm(monkeypatch):
    fake, clock = FakeSsm(), [1000.0]
    monkeypatch.setattr(config, "_ssm_client", fake)
    monkeypatch.setattr(config, "_ssm_cache", {})
    monkeypatch.setattr(config.time, "monotonic", lambda: clock[0])
    monkeypatch.setenv("SECRET_TTL_SECONDS", "300")
    monkeypatch.setenv("ADMIN_JWT_SECRET_PARAM", "/gacha-refunds/prod/admin-jwt-secret")
    monkeypatch.delenv("ADMIN_JWT_SECRET", raising=False)
    return fake, clock


def test_cached_within_the_ttl_then_fetched_again(ssm):
    fake, clock = ssm
    assert config.secret("ADMIN_JWT_SECRET") == "v1"
    fake.value = "v2"  # rotated
    clock[0] += 299
    assert config.secret("ADMIN_JWT_SECRET") == "v1" and fake.calls == 1
    clock[0] += 2
    assert config.secret("ADMIN_JWT_SECRET") == "v2" and fake.calls == 2


def test_an_ssm_outage_after_the_ttl_keeps_the_last_value(ssm):
    fake, clock = ssm
    assert config.secret("ADMIN_JWT_SECRET") == "v1"
    fake.down = True
    clock[0] += 301
    assert config.secret("ADMIN_JWT_SECRET") == "v1"
    fake.down, fake.value = False, "v2"
    assert config.secret("ADMIN_JWT_SECRET") == "v2"


def test_the_first_read_fails_loudly_when_ssm_is_down(ssm):
    fake, _ = ssm
    fake.down = True
    with pytest.raises(ConnectionError):
        config.secret("ADMIN_JWT_SECRET")
