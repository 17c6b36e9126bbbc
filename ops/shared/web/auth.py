"""Bearer tokens: minting and verifying JWTs, and who may do what.

Each service verifies the token itself (signature, ``exp``, issuer, audience,
algorithm pinned to the configured one), so a request that bypasses Kong is
still checked. The customer is the token's subject; ``role`` is ``customer``
or ``operator``.

- A customer sees only their own orders, invoices and payments; another
  customer's resource answers 404, exactly like an unknown id.
- An operator sees everything and alone may change credit limits.
- A missing, expired, badly signed or ``alg=none`` token answers 401; a
  customer calling an operator endpoint answers 403.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import falcon
import jwt

from ops.shared.values.errors import DomainError

LEEWAY_SECONDS = 30  # clock skew tolerated between the minting and verifying machines
MAX_SUBJECT = 64


class Role(StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and role."""

    subject: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True)
class TokenKeys:
    """What signs and verifies tokens: one algorithm, its keys, issuer and audience."""

    algorithm: str
    verifying_key: str | bytes
    signing_key: str | bytes | None
    issuer: str
    audience: str

    @classmethod
    def hs256(cls, secret: bytes, issuer: str, audience: str) -> TokenKeys:
        if len(secret) < 32:
            raise ValueError("an HS256 secret must be at least 32 bytes")
        return cls("HS256", secret, secret, issuer, audience)

    @classmethod
    def rs256(
        cls, public_pem: str, private_pem: str | None, issuer: str, audience: str
    ) -> TokenKeys:
        return cls("RS256", public_pem, private_pem, issuer, audience)


class Unauthenticated(DomainError):
    """No usable token (HTTP 401)."""

    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    """The caller's role may not do this (HTTP 403)."""

    status = 403
    title = "Forbidden"


def mint(keys: TokenKeys, subject: str, role: Role | str, ttl_seconds: int) -> str:
    """A signed token for ``subject`` with ``role``, valid for ``ttl_seconds``."""
    if keys.signing_key is None:
        raise ValueError("no private key configured: these keys can verify but not sign")
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": Role(role).value,
        "iss": keys.issuer,
        "aud": keys.audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, keys.signing_key, algorithm=keys.algorithm)


def verify(keys: TokenKeys, token: str) -> Principal:
    """The principal a token names; raises :class:`Unauthenticated` for any bad token."""
    return verify_until(keys, token)[0]


def verify_until(keys: TokenKeys, token: str) -> tuple[Principal, float]:
    """The principal a token names and the time (POSIX) it expires; raises
    :class:`Unauthenticated` for any bad token."""
    try:
        claims = jwt.decode(
            token,
            keys.verifying_key,
            algorithms=[keys.algorithm],
            audience=keys.audience,
            issuer=keys.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the token is not valid: {exc}") from None
    subject, role = claims.get("sub"), claims.get("role")
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= MAX_SUBJECT
        or not subject.isprintable()
    ):
        raise Unauthenticated("the token's subject is not a valid customer id")
    try:
        return Principal(subject, Role(role)), float(claims["exp"])
    except ValueError:
        raise Unauthenticated("the token's role must be customer or operator") from None


VERIFIED_TOKENS = 10_000  # tokens remembered per process after a successful verification


class Authentication:
    """Falcon middleware: every request but the public paths (and those under a public
    prefix, such as the console's files) needs a valid Bearer token.

    Sets ``req.context.principal``.

    A token that passed verification is remembered until it expires (at most
    ``VERIFIED_TOKENS`` of them), so a client reusing its token costs one dict
    look-up instead of a signature check per request (about a tenth of the orders
    API's CPU, by profile). The verdict cannot change but for expiry, which is
    checked on every use.
    """

    def __init__(
        self, keys: TokenKeys, public_paths: Iterable[str], public_prefixes: Iterable[str] = ()
    ) -> None:
        self.keys = keys
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = tuple(f"{prefix.rstrip('/')}/" for prefix in public_prefixes)
        self._verified: dict[str, tuple[Principal, float]] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if (
            req.path in self.public_paths
            or req.method == "OPTIONS"
            or req.path.startswith(self.public_prefixes)
            or f"{req.path}/" in self.public_prefixes
        ):
            req.context.principal = None
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send Authorization: Bearer <token>")
        req.context.principal = self._principal(token.strip())

    def _principal(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and time.time() <= known[1] + LEEWAY_SECONDS:
            return known[0]
        principal, expires = verify_until(self.keys, token)
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.clear()  # simple bound: start again rather than track age
        self._verified[token] = (principal, expires)
        return principal


def principal_of(req: falcon.Request) -> Principal:
    """The authenticated caller (the middleware guarantees one on protected routes)."""
    principal = getattr(req.context, "principal", None)
    if principal is None:
        raise Unauthenticated("send Authorization: Bearer <token>")
    return principal


def require_operator(req: falcon.Request) -> Principal:
    """The caller, who must be an operator (403 otherwise)."""
    principal = principal_of(req)
    if not principal.is_operator:
        raise Forbidden("this endpoint is for operators")
    return principal


def require_customer(req: falcon.Request) -> Principal:
    """The caller, who must be a customer (403 otherwise)."""
    principal = principal_of(req)
    if principal.is_operator:
        raise Forbidden("this endpoint is for customers; operators have no orders of their own")
    return principal


def can_see(principal: Principal, owner: str) -> bool:
    """Operators see everything; a customer sees what they own."""
    return principal.is_operator or principal.subject == owner
