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


def test_reconciliation_settings(monkeypatch):
    for name in ("RECON_MIDNIGHT_MINUTES", "RECON_LEASE_SECONDS", "RECON_READERS", "RECON_API_BUDGET_SECONDS",
                 "RECON_QUEUE_URL", "RECON_OVERDUE_HOUR"):
        monkeypatch.delenv(name, raising=False)
    assert config.recon_settings() == config.ReconSettings(midnight_minutes=15, lease_seconds=960, readers=4,
                                                           api_budget_seconds=20, queue_url=None, overdue_hour=14)
    monkeypatch.setenv("RECON_READERS", "64")  # bounded: memory and the table's read rate
    monkeypatch.setenv("RECON_QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("RECON_MIDNIGHT_MINUTES", "0")
    got = config.recon_settings()
    assert (got.readers, got.queue_url, got.midnight_minutes) == (16, "https://sqs.example/q", 0)
    monkeypatch.setenv("RECON_LEASE_SECONDS", "soon")
    with pytest.raises(config.ConfigError, match="RECON_LEASE_SECONDS"):
        config.recon_settings()


def test_the_apps_wiring_and_the_aws_endpoints(monkeypatch):
    for name in ("RESTORE_QUEUE_NAME", "POLL_EVERY_MINUTES", "RECON_QUEUE_NAME", "RECON_MINUTE_UTC",
                 "RECON_HOUR_UTC", "RECON_RETRY_HOURS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
                 "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    assert config.app_wiring() == config.AppWiring("local-refund-restore", 2, "local-reconciliation", 30, 2, 12)
    assert config.app_wiring().recon_cron == ("0/30", "2-14")  # the first attempt, then every 30 minutes
    monkeypatch.setenv("POLL_EVERY_MINUTES", "5")
    monkeypatch.setenv("RECON_HOUR_UTC", "3")
    assert (config.app_wiring().poll_every_minutes, config.app_wiring().recon_hour_utc) == (5, 3)
    assert config.aws_endpoint("sqs") is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8002")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9000")
    assert config.aws_endpoint("sqs") == "http://127.0.0.1:8002"
    assert config.aws_endpoint("dynamodb") == "http://127.0.0.1:9000"
