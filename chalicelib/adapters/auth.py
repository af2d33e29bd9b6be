"""Bearer JWT verification (HS256). Admin and player tokens use separate secrets."""
from __future__ import annotations

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


def issue(role: str, subject: str, ttl_seconds: int = 12 * 3600, now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    import jwt  # lazily: PyJWT loads cryptography, which only token routes need

    now = time.time() if now is None else now
    claims = {"sub": subject, "role": role, "iat": int(now), "exp": int(now + ttl_seconds)}
    return jwt.encode(claims, config.secret(_SECRET_NAME[role]), algorithm="HS256")


def verify(authorization: str | None, role: str) -> Principal:
    """Return the principal of a ``Bearer`` token valid for ``role``.

    401 when there is no valid token at all; 403 when a valid token has another role.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token")
    import jwt

    token = authorization[len("Bearer "):].strip()
    try:
        header_claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthenticated("malformed token") from None
    token_role = header_claims.get("role")
    if token_role not in ROLES:
        raise Unauthenticated("token has no valid role")
    try:
        claims = jwt.decode(token, config.secret(_SECRET_NAME[token_role]), algorithms=["HS256"],
                            options={"require": ["exp", "sub", "role"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.PyJWTError:
        raise Unauthenticated("invalid token") from None
    if claims["role"] != role:
        raise Forbidden(f"this route needs a {role} token")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("token has no subject")
    return Principal(role=role, subject=subject)
