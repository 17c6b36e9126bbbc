"""Secrets: generated here with pulumi_random, kept in Secrets Manager.

Values exist only as secret Outputs (encrypted in the stack's state) and in Secrets
Manager, from which ECS hands them to the tasks by ARN: never in code, stack files
or a task definition's plain environment. The one value this program cannot make,
the RS256 public key Kong's second consumer needs, an operator puts into its
secret before the first deploy (ops/infra/README.md).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ops.infra.config import InfraConfig

# Alphanumeric only: passwords go into URLs unescaped, and Amazon MQ and RDS refuse
# some punctuation. 48 characters of [A-Za-z0-9] are 285 bits.
SECRET_LENGTH = 48


def generated(name: str, length: int = SECRET_LENGTH) -> pulumi.Output[str]:
    """A fresh random alphanumeric value, as a secret Output."""
    # The engine marks `result` secret; saying so here keeps it secret in every use
    # before the engine sees it (and under test mocks, which have no engine).
    return pulumi.Output.secret(random.RandomPassword(name, length=length, special=False).result)


def stored(
    config: InfraConfig, name: str, value: pulumi.Input[str] | None, description: str
) -> pulumi.Output[str]:
    """A Secrets Manager secret ``orderflow-<stack>/<name>`` holding ``value`` (kept secret
    in state); without a value, the operator sets it. Returns the secret's ARN."""
    secret = aws.secretsmanager.Secret(
        name,
        name=f"{config.name}/{name}",
        description=description,
        # Deleted secrets linger for the recovery window and block their name: a dev
        # stack is torn down and rebuilt, a prod one keeps the longest window.
        recovery_window_in_days=30 if config.deletion_protection else 0,
    )
    if value is not None:
        aws.secretsmanager.SecretVersion(
            name, secret_id=secret.id, secret_string=pulumi.Output.secret(value)
        )
    return secret.arn


def token_secrets(config: InfraConfig) -> dict[str, pulumi.Output[str]]:
    """The JWT material: ARNs by the environment variable that receives each value.

    ``ORDERFLOW_JWT_SECRET`` (services) and ``DECK_ORDERFLOW_JWT_SECRET`` (Kong) read the
    same secret: Kong's consumer verifies what the services mint.
    """
    jwt = stored(
        config,
        "jwt-secret",
        generated("jwt-secret", 64),
        "HS256 signing secret shared by the services and Kong's jwt plugin",
    )
    unused = stored(
        config,
        "kong-rs256-unused-secret",
        generated("kong-rs256-unused-secret"),
        "decK requires a secret on Kong's RS256 credential; nothing uses it",
    )
    public_key = stored(
        config,
        "jwt-rs256-public-key",
        None,
        "PEM public key of Kong's RS256 consumer (set by an operator; docs/kong.md)",
    )
    return {
        "ORDERFLOW_JWT_SECRET": jwt,
        "DECK_ORDERFLOW_JWT_SECRET": jwt,
        "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET": unused,
        "DECK_ORDERFLOW_JWT_PUBLIC_KEY": public_key,
    }
