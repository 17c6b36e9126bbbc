"""Who may call what: every endpoint as its owner, another customer, an operator,
with no token and with bad tokens."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

import falcon.testing
import jwt
import pytest

from ops import bootstrap
from ops.settings import Settings
from orders import service as orders_service
from orders.domain import Line, NewOrder
from orders.queries import get_order

from .conftest import TEST_SECRET, StubSystem


@dataclass
class World:
    """Customer c1's confirmed order and invoice, and clients for both services."""

    order_id: str
    invoice_id: str
    clients: dict[str, falcon.testing.TestClient]


@pytest.fixture
def world(settings: Settings, stub_system: StubSystem) -> World:
    order = orders_service.place_order(NewOrder("c1", "EUR", (Line("SKU-1", 1, 1000),)))
    stub_system.drain()
    clients = {
        service: falcon.testing.TestClient(bootstrap.build_app(settings, service))
        for service in ("orders", "invoices")
    }
    return World(str(order.id), str(get_order(order.id).invoice_id), clients)


# (service, method, path, body); {o} and {i} are c1's order and invoice.
ENDPOINTS = {
    "get order": ("orders", "GET", "/orders/{o}", None),
    "get timeline": ("orders", "GET", "/orders/{o}/timeline", None),
    "cancel order": ("orders", "POST", "/orders/{o}/cancel", None),
    "list orders": ("orders", "GET", "/orders", None),
    "place order": (
        "orders",
        "POST",
        "/orders",
        {"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]},
    ),
    "get invoice": ("invoices", "GET", "/invoices/{i}", None),
    "list invoices": ("invoices", "GET", "/invoices", None),
    "pay invoice": ("invoices", "POST", "/invoices/{i}/payments", {"amount": "10.00"}),
    "get account": ("invoices", "GET", "/accounts/c1", None),
    "set credit limit": ("invoices", "PUT", "/accounts/c1", {"credit_limit": "50.00"}),
}

# Expected status by caller: the owner (c1), another customer (c2), an operator.
EXPECTED = {
    "get order": (200, 404, 200),
    "get timeline": (200, 404, 200),
    "cancel order": (200, 404, 200),
    "list orders": (200, 200, 200),
    "place order": (201, 201, 403),
    "get invoice": (200, 404, 200),
    "list invoices": (200, 200, 200),
    "pay invoice": (200, 404, 403),
    "get account": (200, 404, 200),
    "set credit limit": (403, 403, 200),
}


def call(world: World, endpoint: str, headers: dict[str, str]) -> falcon.testing.Result:
    service, method, path, body = ENDPOINTS[endpoint]
    path = path.format(o=world.order_id, i=world.invoice_id)
    return world.clients[service].simulate_request(method, path, json=body, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize(
    ("caller", "role", "column"),
    [
        ("c1", "customer", 0),
        ("c2", "customer", 1),
        ("ops", "operator", 2),
    ],
)
def test_each_endpoint_answers_each_kind_of_caller_as_documented(
    world: World,
    token,
    endpoint: str,
    caller: str,
    role: str,
    column: int,
) -> None:
    result = call(world, endpoint, bearer(token(caller, role)))
    assert result.status_code == EXPECTED[endpoint][column], result.text
    if result.status_code >= 400:
        assert result.headers["content-type"] == "application/problem+json"


def test_another_customers_resources_look_exactly_like_unknown_ids(world: World, token) -> None:
    other = bearer(token("c2"))
    hidden = call(world, "get order", other)
    unknown = world.clients["orders"].simulate_get(
        "/orders/00000000-0000-0000-0000-000000000000", headers=other
    )
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json["title"] == unknown.json["title"]


def test_lists_show_a_customer_only_their_own(world: World, token) -> None:
    assert call(world, "list orders", bearer(token("c2"))).json["items"] == []
    assert call(world, "list invoices", bearer(token("c2"))).json["items"] == []
    mine = call(world, "list orders", bearer(token("c1"))).json["items"]
    assert [order["id"] for order in mine] == [world.order_id]
    filtered = world.clients["orders"].simulate_get(
        "/orders", query_string="customer_id=c1", headers=bearer(token("c2"))
    )
    assert filtered.status_code == 422


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_endpoint_without_a_token_is_401(world: World, endpoint: str) -> None:
    result = call(world, endpoint, {})
    assert result.status_code == 401
    assert result.headers["content-type"] == "application/problem+json"
    assert result.headers["www-authenticate"].startswith("Bearer")


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims = {
        "sub": "c1",
        "role": "customer",
        "iss": "orderflow",
        "aud": "orderflow",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


BAD_TOKENS = {
    "expired": jwt.encode(_claims(exp=int(time.time()) - 3600), TEST_SECRET, "HS256"),
    "badly signed": jwt.encode(_claims(), "another-secret-of-thirty-two-bytes!!", "HS256"),
    "alg none": jwt.encode(_claims(), None, "none"),
    "wrong audience": jwt.encode(_claims(aud="someone-else"), TEST_SECRET, "HS256"),
    "wrong issuer": jwt.encode(_claims(iss="someone-else"), TEST_SECRET, "HS256"),
    "no expiry": jwt.encode(_claims(exp=None), TEST_SECRET, "HS256"),
    "unknown role": jwt.encode(_claims(role="admin"), TEST_SECRET, "HS256"),
    "not a jwt": "not-a-token",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
@pytest.mark.parametrize("endpoint", ["get order", "place order", "set credit limit"])
def test_bad_tokens_are_401(world: World, kind: str, endpoint: str) -> None:
    result = call(world, endpoint, bearer(BAD_TOKENS[kind]))
    assert result.status_code == 401, kind
    assert result.headers["content-type"] == "application/problem+json"


def test_health_ready_need_no_token(world: World) -> None:
    for client in world.clients.values():
        assert client.simulate_get("/health").status_code == 200
        assert client.simulate_get("/ready").status_code == 200


def test_idempotency_keys_are_per_customer(world: World, token) -> None:
    body = ENDPOINTS["place order"][3]
    first = world.clients["orders"].simulate_post(
        "/orders", json=body, headers={**bearer(token("c1")), "Idempotency-Key": "same"}
    )
    second = world.clients["orders"].simulate_post(
        "/orders", json=body, headers={**bearer(token("c2")), "Idempotency-Key": "same"}
    )
    assert first.status_code == second.status_code == 201
    assert first.json["id"] != second.json["id"]
    assert second.json["customer_id"] == "c2"


def test_a_remembered_token_is_refused_once_it_has_expired(world: World, monkeypatch) -> None:
    # Given a token that was verified once and is remembered by the middleware
    token = jwt.encode(_claims(exp=int(time.time()) + 60), TEST_SECRET, "HS256")
    assert call(world, "get order", bearer(token)).status_code == 200
    # When its expiry (plus the leeway) has passed, for the middleware and for PyJWT
    later = time.time() + 60 + 120

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return datetime.datetime.fromtimestamp(later, tz)

    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    # Then it is checked again and refused
    result = call(world, "get order", bearer(token))
    assert result.status_code == 401
    assert "expired" in result.json["detail"]
