"""Bearer tokens for the benchmark's customers, signed with a secret made per run.

The benchmark starts the system with ``ORDERFLOW_JWT_SECRET`` set to a fresh
random secret and mints one customer token per benchmark customer with it, so
it never touches the development key under the data directory.
"""

from __future__ import annotations

import secrets

from ops.shared.web.auth import Role, TokenKeys, mint
from tests.bench.client import CUSTOMERS, customer_of

TOKEN_TTL = 6 * 3600  # seconds: longer than any run


def new_secret() -> str:
    """A random HS256 secret, long enough for the settings' check."""
    return secrets.token_hex(32)


def customer_tokens(secret: str, issuer: str, audience: str) -> dict[str, str]:
    """One bearer token per benchmark customer, signed with ``secret`` (HS256)."""
    keys = TokenKeys.hs256(secret.encode(), issuer, audience)
    customers = {customer_of(index) for index in range(CUSTOMERS)}
    return {customer: mint(keys, customer, Role.CUSTOMER, TOKEN_TTL) for customer in customers}
