"""Settings, read lazily from the environment (and, in prod, secrets from SSM).

Nothing here runs at import time: under the Chalice test client the stage's
environment variables exist only during a call, and on Lambda every function
imports app.py, so reading (or fetching) settings is deferred to first use. The
one exception is ``app_wiring()``: app.py calls it at import because Chalice's
decorators need the queue names and schedules then; it reads plain values only.

This is the only module of ``chalicelib`` that reads the environment
(tests/unit/test_settings_source.py).

Secrets are never read from the repository. Each secret ``X`` comes from, in
order: the env var ``X`` (the value itself), ``X_FILE`` (a path to a file
holding it, used by the local stack), or ``X_PARAM`` (an SSM Parameter Store
name, SecureString, used in prod). The local stage alone has development
defaults for the JWT and cursor secrets.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass

_LOCAL_DEV_SECRETS = {
    "ADMIN_JWT_SECRET": "local-dev-admin-secret-not-for-production",
    "USER_JWT_SECRET": "local-dev-user-secret-not-for-production",
    "CURSOR_SECRET": "local-dev-cursor-secret-not-for-production",
    "PHONE_HASH_SECRET": "local-dev-phone-hash-secret-not-for-production",
}


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


_reads = threading.local()  # while a memoised settings function builds: the (name, value) pairs it read


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    seen = getattr(_reads, "pairs", None)
    if seen is not None:
        seen.append((name, value))
    return value if value not in (None, "") else default


def _from_environment(build):
    """``build`` (settings made from environment variables alone) made again only when one of
    the variables it read has changed since; otherwise its last value. The service asks for its
    settings on every DynamoDB call and refund change, several times a request, and parsing
    them each time cost more than comparing the values read."""
    memo: tuple[tuple, object] | None = None

    @functools.wraps(build)
    def current():
        nonlocal memo
        last = memo
        if last is not None and all(os.environ.get(name) == value for name, value in last[0]):
            return last[1]
        outer = getattr(_reads, "pairs", None)
        _reads.pairs = pairs = []
        try:
            value = build()
        finally:
            _reads.pairs = outer
        if outer is not None:  # built inside another memoised function: it read these too
            outer.extend(pairs)
        memo = (tuple(dict.fromkeys(pairs)), value)
        return value

    return current


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:  # a deploy-time mistake, surfaced clearly
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


_ssm_lock = threading.Lock()
_ssm_cache: dict[str, tuple[float, str]] = {}  # source -> (fetched at, monotonic seconds; value)
_ssm_client = None


def _cached(key: str, fetch) -> str:
    """A secret from a file or SSM, cached for ``SECRET_TTL_SECONDS`` (default 300) so a rotated
    secret is picked up by warm containers too. When the source cannot be read after the TTL,
    the cached value is kept (and read again next time) rather than failing the request."""
    ttl = _int("SECRET_TTL_SECONDS", 300)
    now = time.monotonic()
    with _ssm_lock:
        cached = _ssm_cache.get(key)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            value = fetch()
        except Exception:
            if cached is None:
                raise
            return cached[1]  # briefly unreachable: the last value still works
        _ssm_cache[key] = (now, value)
        return value


def _ssm_get(name: str, missing_ok: bool = False) -> str:
    """A parameter's value; with ``missing_ok``, "" when there is no such parameter."""
    def fetch() -> str:
        global _ssm_client
        if _ssm_client is None:
            import boto3  # only in prod, only on the first secret read

            _ssm_client = boto3.client("ssm")
        try:
            return _ssm_client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:  # botocore's ClientError names the case in its response
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if missing_ok and code == "ParameterNotFound":
                return ""
            raise

    return _cached("ssm:" + name, fetch)


def _file_get(path: str) -> str:
    def fetch() -> str:
        with open(path, encoding="utf-8") as fh:
            return fh.read()

    return _cached("file:" + path, fetch)


def secret(name: str) -> str:
    """Return the secret ``name`` from env, a file, or SSM (files and SSM cached for a few minutes)."""
    value = _env(name)
    if value is not None:
        return value
    path = _env(f"{name}_FILE")
    if path is not None:
        return _file_get(path)
    param = _env(f"{name}_PARAM")
    if param is not None:
        return _ssm_get(param)
    if stage() == "local" and name in _LOCAL_DEV_SECRETS:
        return _LOCAL_DEV_SECRETS[name]
    raise ConfigError(f"secret {name} is not configured (set {name}, {name}_FILE or {name}_PARAM)")


def optional_secret(name: str) -> str | None:
    """A secret that may be left out, read like ``secret``: None when no source is set, or when its
    SSM parameter does not exist (the deployment did not create it; remembered like a value)."""
    if _env(name) is not None or _env(f"{name}_FILE") is not None:
        return secret(name)
    param = _env(f"{name}_PARAM")
    if param is None:
        return None
    return _ssm_get(param, missing_ok=True) or None


def stage() -> str:
    return _env("STAGE", "local") or "local"


@dataclass(frozen=True)
class Tables:
    prefix: str

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_prefix: str
    restore_queue_url: str | None
    restore_queue_name: str
    # refund engine knobs
    poll_after_seconds: int
    poll_batch: int
    abnormal_poll_seconds: int
    restore_sweep_seconds: int
    notify_max_skew_seconds: int
    notify_dedupe_ttl_days: int
    poll_failure_task_after: int
    payment_query_after_seconds: int
    payment_check_hours: int
    max_token_lifetime_seconds: int = 24 * 3600  # a bearer token's exp - iat (and exp - now) at most

    @property
    def tables(self) -> Tables:
        return Tables(self.table_prefix)


@dataclass(frozen=True)
class WechatSettings:
    mchid: str
    appid: str
    cert_serial_no: str
    private_key: str  # merchant private key, PKCS#8 PEM
    apiv3_key: str
    public_key: str | None  # WeChat Pay public key (public-key mode)
    public_key_id: str | None  # PUB_KEY_ID_...; without it: platform-certificate mode
    cert_dir: str | None  # where platform certificates are kept (default: a folder in the temp dir)
    base_url: str  # https://api.mch.weixin.qq.com in prod, the simulator locally
    refund_notify_url: str
    payment_notify_url: str
    timeout_seconds: float
    # WeChat Pay platform certificates (PEM, one or more), when configured; otherwise downloaded
    platform_certificates: str | None = None
    complaint_notify_url: str | None = None  # registered at WeChat for COMPLAINT.* notifications


@_from_environment
def settings() -> Settings:
    stg = stage()
    return Settings(
        stage=stg,
        region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "ap-east-1")) or "ap-east-1",
        table_prefix=_env("TABLE_PREFIX", f"{stg}-") or "",
        restore_queue_url=_env("RESTORE_QUEUE_URL"),
        restore_queue_name=_env("RESTORE_QUEUE_NAME", f"{stg}-refund-restore") or "",
        poll_after_seconds=_int("POLL_AFTER_SECONDS", 60),
        poll_batch=_int("POLL_BATCH", 50),
        abnormal_poll_seconds=_int("ABNORMAL_POLL_SECONDS", 3600),
        restore_sweep_seconds=_int("RESTORE_SWEEP_SECONDS", 300),
        notify_max_skew_seconds=_int("NOTIFY_MAX_SKEW_SECONDS", 300),
        notify_dedupe_ttl_days=_int("NOTIFY_DEDUPE_TTL_DAYS", 30),
        poll_failure_task_after=_int("POLL_FAILURE_TASK_AFTER", 5),
        payment_query_after_seconds=_int("PAYMENT_QUERY_AFTER_SECONDS", 600),
        payment_check_hours=_int("PAYMENT_CHECK_HOURS", 25),
        max_token_lifetime_seconds=_int("MAX_TOKEN_LIFETIME_SECONDS", 24 * 3600),
    )


def wechat_settings() -> WechatSettings:
    public_key = None
    public_key_id = _env("WECHAT_PUBLIC_KEY_ID")
    if public_key_id:
        public_key = secret("WECHAT_PUBLIC_KEY")
    return WechatSettings(
        mchid=_env("WECHAT_MCHID") or _missing("WECHAT_MCHID"),
        appid=_env("WECHAT_APPID") or _missing("WECHAT_APPID"),
        cert_serial_no=_env("WECHAT_CERT_SERIAL_NO") or _missing("WECHAT_CERT_SERIAL_NO"),
        private_key=secret("WECHAT_PRIVATE_KEY"),
        apiv3_key=secret("WECHAT_APIV3_KEY"),
        public_key=public_key,
        public_key_id=public_key_id,
        cert_dir=_env("WECHAT_CERT_DIR"),
        base_url=_env("WECHAT_BASE_URL", "https://api.mch.weixin.qq.com") or "",
        refund_notify_url=_env("WECHAT_REFUND_NOTIFY_URL") or _missing("WECHAT_REFUND_NOTIFY_URL"),
        payment_notify_url=_env("WECHAT_PAYMENT_NOTIFY_URL") or _missing("WECHAT_PAYMENT_NOTIFY_URL"),
        timeout_seconds=wechat_timeout_seconds(),
        platform_certificates=optional_secret("WECHAT_PLATFORM_CERTS"),
        complaint_notify_url=_env("WECHAT_COMPLAINT_NOTIFY_URL"),
    )


def _missing(name: str) -> str:
    raise ConfigError(f"{name} is not configured")


# ---------------------------------------------------------------- WeChat Pay timeouts


def _seconds(name: str, default: str) -> float:
    raw = _env(name, default) or default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number") from exc


def wechat_timeout_seconds() -> float:
    """Connect and read timeout of one WeChat Pay call (``WECHAT_TIMEOUT_SECONDS``, default 5). Its
    sign is checked where the client is built: a zero or negative value holds the work, not the app."""
    return _seconds("WECHAT_TIMEOUT_SECONDS", "5")


def wechat_bill_timeout_seconds() -> float:
    """Read timeout of a trade bill download (``WECHAT_BILL_TIMEOUT_SECONDS``, default 60)."""
    value = _seconds("WECHAT_BILL_TIMEOUT_SECONDS", "60")
    if value <= 0:
        raise ConfigError("WECHAT_BILL_TIMEOUT_SECONDS must be positive")
    return value


# ---------------------------------------------------------------- staff roles and sign-in


def _role_amounts(name: str, defaults: dict[str, int]) -> dict[str, int]:
    """``support=20000,finance=200000,admin=1000000``: an amount in fen per staff role. Roles left
    out keep their default; an unknown role or a non-integer amount is a deploy-time error."""
    raw = _env(name)
    values = dict(defaults)
    if raw is None:
        return values
    for part in raw.split(","):
        if not part.strip():
            continue
        role, sep, amount = part.partition("=")
        role, amount = role.strip(), amount.strip()
        if not sep or role not in defaults or not amount.isascii() or not amount.isdigit():
            raise ConfigError(f"{name} must look like support=20000,finance=200000,admin=1000000 (fen); "
                              f"got {part!r}")
        values[role] = int(amount)
    return values


@dataclass(frozen=True)
class StaffLimits:
    """Amounts in fen. ``refund``: a refund above this needs another person's approval.
    ``daily``: what one operator may send to WeChat directly per Beijing day. Above
    ``finance_approval`` only finance (or admin) may approve."""

    refund: dict
    daily: dict
    finance_approval: int


DEFAULT_REFUND_LIMITS = {"support": 20000, "finance": 200000, "admin": 1000000}  # 200 / 2000 / 10000 yuan
DEFAULT_DAILY_LIMITS = {"support": 200000, "finance": 2000000, "admin": 10000000}  # 2000 / 20000 / 100000 yuan
DEFAULT_FINANCE_APPROVAL = 100000  # 1000 yuan


@_from_environment
def staff_limits() -> StaffLimits:
    return StaffLimits(refund=_role_amounts("STAFF_REFUND_LIMITS", DEFAULT_REFUND_LIMITS),
                       daily=_role_amounts("STAFF_DAILY_LIMITS", DEFAULT_DAILY_LIMITS),
                       finance_approval=_int("FINANCE_APPROVAL_THRESHOLD", DEFAULT_FINANCE_APPROVAL))


@dataclass(frozen=True)
class OidcSettings:
    """The shop's identity provider, whose RS256/ES256 staff tokens are verified through its JWKS."""

    issuer: str  # exactly the tokens' ``iss``
    audience: str  # the tokens' ``aud`` must contain it (the console's client id)
    jwks_url: str | None  # None: discovered from <issuer>/.well-known/openid-configuration
    role_claim: str  # dotted path to the claim with the role(s), e.g. "roles" or "realm_access.roles"
    role_map: dict  # the IdP's role or group name -> our StaffRole code
    subject_claim: str
    person_claim: str | None  # a claim naming the staff person (docs/sign-in.md); None: the staff directory
    timeout_seconds: float
    jwks_cache_seconds: int
    refresh_cooldown_seconds: float  # least time between two refreshes forced by an unknown kid


def oidc_settings() -> OidcSettings | None:
    """None when no issuer is configured: only the shared-secret HS256 tokens are accepted."""
    issuer = _env("OIDC_ISSUER")
    if issuer is None:
        return None
    audience = _env("OIDC_AUDIENCE") or _missing("OIDC_AUDIENCE")
    role_map = {}
    for part in (_env("OIDC_ROLE_MAP") or "support=support,finance=finance,admin=admin").split(","):
        if not part.strip():
            continue
        theirs, sep, ours = part.rpartition("=")
        if not sep or not theirs.strip() or ours.strip() not in DEFAULT_REFUND_LIMITS:
            raise ConfigError(f"OIDC_ROLE_MAP must look like refund-support=support,refund-finance=finance; "
                              f"got {part!r}")
        role_map[theirs.strip()] = ours.strip()
    try:
        timeout = float(_env("OIDC_TIMEOUT_SECONDS", "3") or "3")
        cooldown = float(_env("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", "30") or "30")
    except ValueError as exc:
        raise ConfigError("OIDC_TIMEOUT_SECONDS and OIDC_JWKS_REFRESH_COOLDOWN_SECONDS must be numbers") from exc
    return OidcSettings(issuer=issuer, audience=audience, jwks_url=_env("OIDC_JWKS_URL"),
                        role_claim=_env("OIDC_ROLE_CLAIM", "roles") or "roles", role_map=role_map,
                        subject_claim=_env("OIDC_SUBJECT_CLAIM", "sub") or "sub",
                        person_claim=_env("OIDC_PERSON_CLAIM") or None, timeout_seconds=timeout,
                        jwks_cache_seconds=_int("OIDC_JWKS_CACHE_SECONDS", 300),
                        refresh_cooldown_seconds=cooldown)


@dataclass(frozen=True)
class IdentitySettings:
    """How a staff identity (issuer, subject) becomes a person (docs/sign-in.md, "One person")."""

    case_insensitive_issuers: frozenset  # issuers whose subjects are compared NFKC + casefold ("local": HS256)
    directory_cache_seconds: int  # how long a container keeps what the staff directory said


def identity_settings() -> IdentitySettings:
    raw = _env("CASE_INSENSITIVE_ISSUERS", "local") or ""
    return IdentitySettings(case_insensitive_issuers=frozenset(p.strip() for p in raw.split(",") if p.strip()),
                            directory_cache_seconds=max(0, _int("STAFF_DIRECTORY_CACHE_SECONDS", 60)))


# ---------------------------------------------------------------- AWS endpoints and the app's wiring


def aws_endpoint(service: str) -> str | None:
    """The endpoint ``service`` (``dynamodb``, ``sqs``) is reached at: ``AWS_ENDPOINT_URL_<SERVICE>``,
    else ``AWS_ENDPOINT_URL``; None on AWS itself (the SDK's own endpoint). Locally, moto."""
    return _env(f"AWS_ENDPOINT_URL_{service.upper()}") or _env("AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class AppWiring:
    """What app.py's decorators need when the app is imported (packaging reads them from the
    stage's settings): the queues its SQS handlers consume and its schedules."""

    restore_queue_name: str
    poll_every_minutes: int
    recon_queue_name: str
    recon_minute_utc: int  # EventBridge cron is UTC: the day's first attempt
    recon_hour_utc: int
    recon_retry_hours: int  # then every 30 minutes for this many hours while a day's bill is not out
    complaint_sweep_minutes: int = 10  # how often the complaint list is swept (投诉)

    @property
    def recon_cron(self) -> tuple[str, str]:
        """(minutes, hours) of the reconciliation schedule: the first attempt, then every 30 min."""
        last = min(self.recon_hour_utc + self.recon_retry_hours, 23)
        return f"{self.recon_minute_utc % 30}/30", f"{self.recon_hour_utc}-{last}"


def app_wiring() -> AppWiring:
    """Safe at import time: plain environment values, no secret, no AWS client."""
    return AppWiring(restore_queue_name=_env("RESTORE_QUEUE_NAME", "local-refund-restore") or "",
                     poll_every_minutes=_int("POLL_EVERY_MINUTES", 2),
                     recon_queue_name=_env("RECON_QUEUE_NAME", "local-reconciliation") or "",
                     # WeChat's bill of a day is ready from about 10:00 Beijing (02:00 UTC)
                     recon_minute_utc=_int("RECON_MINUTE_UTC", 30),
                     recon_hour_utc=_int("RECON_HOUR_UTC", 2),
                     recon_retry_hours=_int("RECON_RETRY_HOURS", 12),
                     complaint_sweep_minutes=_int("COMPLAINT_SWEEP_MINUTES", 10))


# ---------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class ReconSettings:
    midnight_minutes: int  # how close to midnight a success may be for WeChat to bill it on the adjacent day
    lease_seconds: int  # how long a run's worker holds it (a Lambda runs at most 900 s)
    readers: int  # BatchGetItem calls in flight at once (bounded: memory, and the table's read rate)
    api_budget_seconds: int  # a run started from the console works this long (API Gateway answers within 29 s)
    queue_url: str | None  # the continuation queue; None: the next scheduled run resumes a run out of time
    overdue_hour: int  # Beijing hour after which a day whose bill is still unreconciled raises an alarm


def recon_settings() -> ReconSettings:
    return ReconSettings(midnight_minutes=_int("RECON_MIDNIGHT_MINUTES", 15),
                         lease_seconds=_int("RECON_LEASE_SECONDS", 960),
                         readers=max(1, min(_int("RECON_READERS", 4), 16)),
                         api_budget_seconds=_int("RECON_API_BUDGET_SECONDS", 20),
                         queue_url=_env("RECON_QUEUE_URL"),
                         overdue_hour=_int("RECON_OVERDUE_HOUR", 14))


# ---------------------------------------------------------------- domain events


@dataclass(frozen=True)
class EventSettings:
    bus_name: str  # the EventBridge bus the relay publishes to (a Ref in CloudFormation)
    relay_batch: int  # events per shard the relay takes in one run


def event_settings() -> EventSettings:
    return EventSettings(bus_name=_env("EVENT_BUS_NAME", f"{stage()}-refund-events") or "",
                         relay_batch=max(1, _int("EVENT_RELAY_BATCH", 100)))


# ---------------------------------------------------------------- subscription messages (订阅消息)


@dataclass(frozen=True)
class SubscribeSettings:
    appid: str  # the mini-program's AppID (the one WeChat Pay's orders are paid in)
    base_url: str  # the mini-program server API: https://api.weixin.qq.com, the simulator locally
    templates: dict  # template id -> what it tells ("review" | "refunded", domain/subscriptions.py)
    max_attempts: int  # sends of one message before it is given up


def subscribe_settings() -> SubscribeSettings:
    """``SUBSCRIBE_TEMPLATES``: ``<template id>=<kind>`` pairs, comma separated; the app secret is
    the secret ``MINIAPP_SECRET``."""
    templates = {}
    for pair in (_env("SUBSCRIBE_TEMPLATES", "") or "").split(","):
        tid, sep, kind = pair.strip().partition("=")
        if sep and tid.strip() and kind.strip():
            templates[tid.strip()] = kind.strip()
    return SubscribeSettings(appid=_env("MINIAPP_APPID") or _env("WECHAT_APPID") or "",
                             base_url=(_env("WECHAT_MP_BASE_URL", "https://api.weixin.qq.com") or "").rstrip("/"),
                             templates=templates, max_attempts=max(1, _int("SUBSCRIBE_MAX_ATTEMPTS", 8)))
# ---------------------------------------------------------------- consumer complaints (投诉)


@dataclass(frozen=True)
class ComplaintSettings:
    reply_hours: int  # WeChat: the first reply within 24 h of the complaint
    resolve_hours: int  # WeChat: resolved within 72 h, else it may refund the player itself
    near_hours: int  # a deadline this close counts as near (metric, alarm, the console's risk tag)
    sweep_days: int  # the list's span (WeChat: at most 30 days between begin_date and end_date)
    sweep_budget_seconds: int  # stop reading pages when this little time is left in the run


def complaint_settings() -> ComplaintSettings:
    days = _int("COMPLAINT_SWEEP_DAYS", 30)
    if not 0 <= days <= 30:
        raise ConfigError("COMPLAINT_SWEEP_DAYS must be 0-30 (WeChat lists at most 30 days at once)")
    return ComplaintSettings(reply_hours=_int("COMPLAINT_REPLY_HOURS", 24),
                             resolve_hours=_int("COMPLAINT_RESOLVE_HOURS", 72),
                             near_hours=_int("COMPLAINT_NEAR_HOURS", 6), sweep_days=days,
                             sweep_budget_seconds=_int("COMPLAINT_SWEEP_RESERVE_SECONDS", 10))
