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


class ParameterNotFound(Exception):
    """What botocore raises for a parameter that does not exist (a ClientError with this code)."""

    response = {"Error": {"Code": "ParameterNotFound", "Message": "not found"}}


def test_an_optional_secret_left_out_of_the_deployment_is_none_and_is_not_asked_for_again(ssm, monkeypatch):
    fake, clock = ssm
    monkeypatch.delenv("WECHAT_PLATFORM_CERTS", raising=False)
    monkeypatch.delenv("WECHAT_PLATFORM_CERTS_FILE", raising=False)
    monkeypatch.delenv("WECHAT_PLATFORM_CERTS_PARAM", raising=False)
    assert config.optional_secret("WECHAT_PLATFORM_CERTS") is None and fake.calls == 0  # no source set
    monkeypatch.setenv("WECHAT_PLATFORM_CERTS_PARAM", "/gacha-refunds/prod/wechat/platform-certificates")
    real = fake.get_parameter

    def missing(Name, WithDecryption):
        fake.calls += 1
        raise ParameterNotFound()

    fake.get_parameter = missing
    assert config.optional_secret("WECHAT_PLATFORM_CERTS") is None
    assert config.optional_secret("WECHAT_PLATFORM_CERTS") is None and fake.calls == 1  # cached like a value
    fake.get_parameter = real  # created later: read after the time-to-live
    clock[0] += 301
    assert config.optional_secret("WECHAT_PLATFORM_CERTS") == "v1"
    with pytest.raises(ParameterNotFound):  # a secret that must be there still fails loudly
        fake.get_parameter = missing
        clock[0] += 301
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


def test_settings_follow_the_environment_at_once(monkeypatch):
    """Settings are kept between calls (they are asked for several times a request) but never
    outlive a change of a variable they read: set, changed, removed, or a fallback overridden."""
    monkeypatch.delenv("POLL_BATCH", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-east-1")
    first = config.settings()
    assert (first.poll_batch, first.region) == (50, "ap-east-1")
    assert config.settings() is first  # nothing changed: not parsed again
    monkeypatch.setenv("POLL_BATCH", "7")
    assert config.settings().poll_batch == 7
    monkeypatch.setenv("POLL_BATCH", "9")
    assert config.settings().poll_batch == 9
    monkeypatch.setenv("AWS_REGION", "cn-north-1")  # read before the fallback, unset until now
    assert config.settings().region == "cn-north-1"
    monkeypatch.delenv("POLL_BATCH")
    assert config.settings().poll_batch == 50
    monkeypatch.setenv("POLL_BATCH", "many")  # a malformed value fails every time, never kept
    for _ in range(2):
        with pytest.raises(config.ConfigError, match="POLL_BATCH"):
            config.settings()


def test_staff_limits_follow_the_environment_at_once(monkeypatch):
    monkeypatch.delenv("STAFF_DAILY_LIMITS", raising=False)
    assert config.staff_limits().daily == config.DEFAULT_DAILY_LIMITS
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "support=100")
    assert config.staff_limits().daily["support"] == 100
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "support=200")
    assert config.staff_limits().daily["support"] == 200
