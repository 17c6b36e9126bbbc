"""The demo's identities: the signing keys, and a bearer token per customer and operator."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ops.bootstrap import NoSigningKey, token_keys
from ops.settings import Settings
from ops.shared.web.auth import Role, TokenKeys, mint

TOKEN_TTL = 3600  # seconds; far longer than any run
OPERATOR = "demo-operator"  # the operator token's subject


def signing_keys(settings: Settings) -> TokenKeys:
    """The keys the system verifies tokens with, able to sign.

    Raises :class:`NoSigningKey` if no key is configured and no development key exists
    in ``settings.data_dir``, or if only a public key is configured (nothing to sign with).
    """
    keys = token_keys(settings)
    if keys.signing_key is None:
        raise NoSigningKey(
            "ORDERFLOW_JWT_PUBLIC_KEY is set without ORDERFLOW_JWT_PRIVATE_KEY: "
            "the demo cannot sign tokens; set the private key too"
        )
    return keys


@dataclass
class Tokens:
    """Bearer tokens minted on first use and cached, one per (subject, role); thread-safe."""

    keys: TokenKeys
    ttl_seconds: int = TOKEN_TTL
    _minted: dict[tuple[str, Role], str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _token(self, subject: str, role: Role) -> str:
        """The cached token of ``subject`` in ``role``, minted if there is none yet."""
        with self._lock:
            if (subject, role) not in self._minted:
                self._minted[subject, role] = mint(self.keys, subject, role, self.ttl_seconds)
            return self._minted[subject, role]

    def customer(self, customer_id: str) -> str:
        """A customer token whose subject is ``customer_id``."""
        return self._token(customer_id, Role.CUSTOMER)

    @property
    def operator(self) -> str:
        """An operator token (subject ``OPERATOR``)."""
        return self._token(OPERATOR, Role.OPERATOR)
