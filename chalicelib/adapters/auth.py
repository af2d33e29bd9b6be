"""Bearer JWT verification (HS256). Admin and player tokens use separate secrets."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .. import config
from ..domain.errors import Forbidden, Unauthenticated

ROLES = ("admin", "user")
_SECRET_NAME = {"admin": "ADMIN_JWT_SECRET", "user": "USER_JWT_SECRET"}


@dataclass(frozen=True)
class Principal:
    role: str
    subject: str  # admin id or user_id

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.subject}"


LEEWAY_SECONDS = 30  # clock skew allowed on exp, iat and nbf
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 128


def max_lifetime_seconds() -> int:
    return config.settings().max_token_lifetime_seconds


def issue(role: str, subject: str, ttl_seconds: int = 12 * 3600, now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not 0 < ttl_seconds <= max_lifetime_seconds():
        raise ValueError(f"ttl_seconds must be between 1 and {max_lifetime_seconds()} (MAX_TOKEN_LIFETIME_SECONDS)")
    _check_subject(subject, ValueError)
    import jwt  # lazily: PyJWT loads cryptography, which only token routes need

    now = time.time() if now is None else now
    claims = {"sub": subject, "role": role, "iat": int(now), "exp": int(now + ttl_seconds)}
    return jwt.encode(claims, config.secret(_SECRET_NAME[role]), algorithm="HS256")


def _check_subject(subject, error=Unauthenticated) -> str:
    """A subject is an admin id or a user_id: printable, no surrounding whitespace, not blank."""
    if not (isinstance(subject, str) and subject.strip() and subject == subject.strip()
            and len(subject) <= MAX_SUBJECT_CHARS and subject.isprintable()):
        raise error("token has no valid subject")
    return subject


def _number(claims: dict, name: str) -> float | None:
    """A NumericDate claim: an int or float (a string or boolean is refused), or None if absent."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unauthenticated(f"token {name} must be a number")
    return value


def _check_times(claims: dict, now: float) -> None:
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None or iat is None:
        raise Unauthenticated("token must carry exp and iat")
    if exp <= now - LEEWAY_SECONDS:
        raise Unauthenticated("token expired")
    if iat > now + LEEWAY_SECONDS:
        raise Unauthenticated("token issued in the future")
    if nbf is not None and nbf > now + LEEWAY_SECONDS:
        raise Unauthenticated("token not valid yet")
    longest = max_lifetime_seconds()
    if exp <= iat or exp - iat > longest or exp - now > longest + LEEWAY_SECONDS:
        raise Unauthenticated(f"token lifetime exceeds {longest} seconds")


def verify(authorization: str | None, role: str) -> Principal:
    """Return the principal of a ``Bearer`` token valid for ``role``.

    401 when there is no valid token at all; 403 when a valid token has another role. Valid:
    HS256 with the role's secret; numeric ``exp`` and ``iat`` (a string is refused), not
    expired, not issued in the future, ``nbf`` (when present) reached, a lifetime of at most
    MAX_TOKEN_LIFETIME_SECONDS (default 24 h) counted both as exp - iat and exp - now, each
    with LEEWAY_SECONDS of clock skew; a printable, non-blank subject.
    """
    if not isinstance(authorization, str) or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token")
    import jwt

    token = authorization[len("Bearer "):].strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise Unauthenticated("malformed token")
    try:
        header_claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthenticated("malformed token") from None
    token_role = header_claims.get("role")
    if not isinstance(token_role, str) or token_role not in ROLES:
        raise Unauthenticated("token has no valid role")
    try:
        claims = jwt.decode(token, config.secret(_SECRET_NAME[token_role]), algorithms=["HS256"],
                            options={"require": ["exp", "iat", "sub", "role"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise Unauthenticated("invalid token") from None
    _check_times(claims, time.time())
    if claims["role"] != role:
        raise Forbidden(f"this route needs a {role} token")
    return Principal(role=role, subject=_check_subject(claims.get("sub")))
