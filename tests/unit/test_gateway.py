"""The gateway against the REAL orders and invoices apps, served by waitress on SQLite.

The services run in threads on free ports with the stub broker (``stub_system.drain()``
runs the saga); the gateway is called in-process through Falcon's test client and
talks to them over HTTP only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import falcon.testing
import pytest
from graphql import build_schema, get_introspection_query, parse, validate
from opentelemetry import trace

from gateway import clients
from gateway.app import create_app
from gateway.limits import depth_limit
from ops import bootstrap
from ops.settings import Settings
from ops.shared.telemetry import tracing
from ops.shared.web.auth import TokenKeys, mint

from .conftest import StubSystem
from .gateway_support import (
    Recorder,
    Rendezvous,
    assert_documented,
    failing_app,
    http_json,
    refusing_port,
    served,
    silent_port,
)

ORDER = {"currency": "EUR", "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "12.34"}]}
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Services:
    """Both services served over HTTP, each behind a request recorder."""

    orders_url: str
    invoices_url: str
    orders: Recorder
    invoices: Recorder
    system: StubSystem


@pytest.fixture
def services(settings: Settings, stub_system: StubSystem) -> Iterator[Services]:
    orders = Recorder(bootstrap.build_app(settings, "orders"))
    invoices = Recorder(bootstrap.build_app(settings, "invoices"))
    with served(settings, orders, invoices) as (orders_url, invoices_url):
        yield Services(orders_url, invoices_url, orders, invoices, stub_system)


GatewayFactory = Callable[..., falcon.testing.TestClient]


@pytest.fixture
def gateway(settings: Settings, services: Services) -> GatewayFactory:
    """Builds the gateway (``create_app``) in front of the services, or of other URLs."""

    def make(
        orders_url: str | None = None,
        invoices_url: str | None = None,
        timeout: float = 5.0,
        keys: TokenKeys | None = None,
        audit_url: str = "http://127.0.0.1:9",
    ) -> falcon.testing.TestClient:
        app = create_app(
            orders_url=orders_url or services.orders_url,
            invoices_url=invoices_url or services.invoices_url,
            audit_url=audit_url,
            timeout=timeout,
            token_keys=keys or bootstrap.token_keys(settings),
        )
        return falcon.testing.TestClient(app)

    return make


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def place(services: Services, token: str, body: dict | None = None) -> dict:
    """Place an order directly at the orders service; returns it."""
    status, order = http_json("POST", f"{services.orders_url}/orders", token, body or ORDER)
    assert status == 201, order
    return order


def graphql(
    client: falcon.testing.TestClient,
    token: str | None,
    query: str,
    variables: dict | None = None,
) -> falcon.testing.Result:
    headers = bearer(token) if token else {}
    return client.simulate_post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def assert_problem(result: falcon.testing.Result, status: int) -> dict:
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert "traceback" not in result.text.lower()
    return result.json


# --- REST: composition ------------------------------------------------------------------


def test_my_orders_lists_the_callers_orders_with_invoice_summaries_from_one_invoices_call(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given three orders of c1 that the saga invoiced, and one of c2
    mine = [place(services, token("c1"))["id"] for _ in range(3)]
    place(services, token("c2"))
    services.system.drain()
    services.invoices.clear()
    # When c1 lists their orders through the gateway
    result = gateway().simulate_get("/me/orders", headers=bearer(token("c1")))
    # Then each of c1's orders comes with its invoice summary, and nothing is missing
    assert result.status_code == 200, result.text
    page = result.json
    assert_documented(page, "MyOrderList")
    assert [item["id"] for item in page["items"]] == list(reversed(mine))
    assert page["partial_failures"] == []
    assert page["next_cursor"] is None
    for item in page["items"]:
        assert item["status"] == "confirmed"
        assert set(item["invoice"]) == {"id", "number", "status", "total"}
        assert item["invoice"]["id"] == item["invoice_id"]
        assert item["invoice"]["number"] == item["invoice_number"]
        assert (item["invoice"]["status"], item["invoice"]["total"]) == ("issued", "24.68")
    # And the invoices service was asked exactly once, for all three orders
    calls = services.invoices.to("/invoices")
    assert len(calls) == 1
    assert sorted(v for k, v in calls[0].query if k == "order_id") == sorted(mine)


def test_my_orders_passes_status_limit_and_cursor_on_and_pages_through(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given three orders of c1, one of them cancelled
    ids = [place(services, token("c1"))["id"] for _ in range(3)]
    services.system.drain()
    http_json("POST", f"{services.orders_url}/orders/{ids[0]}/cancel", token("c1"))
    services.system.drain()
    client = gateway()
    # When c1 asks for confirmed orders, one at a time
    first = client.simulate_get(
        "/me/orders", params={"status": "confirmed", "limit": "1"}, headers=bearer(token("c1"))
    ).json
    second = client.simulate_get(
        "/me/orders",
        params={"status": "confirmed", "limit": "1", "cursor": first["next_cursor"]},
        headers=bearer(token("c1")),
    ).json
    # Then the pages hold the two confirmed orders, each with its invoice
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [ids[2], ids[1]]
    assert second["items"][0]["invoice"]["status"] == "issued"
    # And a bad status is the orders service's own 422, passed on
    bad = client.simulate_get("/me/orders?status=lost", headers=bearer(token("c1")))
    assert assert_problem(bad, 422)["errors"][0]["field"] == "status"


def test_an_empty_page_asks_the_invoices_service_nothing(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given a customer without orders
    # When they list their orders
    result = gateway().simulate_get("/me/orders", headers=bearer(token("nobody")))
    # Then the page is empty and the invoices service was not asked
    assert result.json == {"items": [], "next_cursor": None, "partial_failures": []}
    assert services.invoices.to("/invoices") == []


def test_an_order_in_detail_has_its_full_invoice_and_its_timeline_and_forwards_trace_headers(
    services: Services, gateway: GatewayFactory, token, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An untraced gateway passes the caller's trace headers through (a traced one sends
    # its own span's); another module may have installed a global tracer provider.
    monkeypatch.setattr(tracing, "tracer", trace.NoOpTracer())
    monkeypatch.setattr(clients, "tracer", trace.NoOpTracer())  # and no CLIENT spans
    # Given an order the saga confirmed
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    services.orders.clear()
    # When c1 reads it through the gateway with a correlation id and a trace context
    c1 = token("c1")
    headers = bearer(c1, **{"X-Correlation-ID": "corr-42", "traceparent": TRACE})
    result = gateway().simulate_get(f"/me/orders/{order_id}", headers=headers)
    # Then the order, its full invoice and its timeline come together
    assert result.status_code == 200, result.text
    detail = result.json
    assert_documented(detail, "OrderDetail")
    assert detail["order"]["id"] == order_id
    assert detail["order"]["status"] == "confirmed"
    invoice = detail["invoice"]
    assert invoice["id"] == detail["order"]["invoice_id"]
    assert invoice["order_id"] == order_id
    assert {"number", "customer_id", "currency", "issued_at", "void_reason"} <= set(invoice)
    assert [(s["event"], s["outcome"]) for s in detail["timeline"]] == [
        ("OrderPlaced", "pending"),
        ("InvoiceIssued", "confirmed"),
    ]
    assert detail["partial_failures"] == []
    # And every service call carried the caller's token, correlation id and trace context
    calls = services.orders.to("/orders") + services.invoices.to("/invoices")
    assert len(calls) == 3
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {c1}"
        assert call.headers["x-correlation-id"] == "corr-42"
        assert call.headers["traceparent"] == TRACE


def test_an_operator_lists_every_customers_orders_filtered_and_reads_any_order(
    services: Services, gateway: GatewayFactory, token
) -> None:
    mine = place(services, token("c1"))["id"]
    theirs = place(services, token("c2"))["id"]
    services.system.drain()
    operator = bearer(token("ops", "operator"))
    client = gateway()
    every = client.simulate_get("/ops/orders", headers=operator)
    assert every.status_code == 200, every.text
    assert [o["id"] for o in every.json["items"]] == [theirs, mine]
    assert all(o["invoice"] is not None for o in every.json["items"])
    one = client.simulate_get("/ops/orders", query_string="customer_id=c1", headers=operator)
    assert [o["id"] for o in one.json["items"]] == [mine]
    detail = client.simulate_get(f"/ops/orders/{theirs}", headers=operator)
    assert detail.status_code == 200, detail.text
    assert_documented(detail.json, "OrderDetail")
    assert detail.json["order"]["customer_id"] == "c2"
    # a customer may not use the operators' views, and an operator has no /me
    assert client.simulate_get("/ops/orders", headers=bearer(token("c1"))).status_code == 403
    assert (
        client.simulate_get(f"/ops/orders/{mine}", headers=bearer(token("c1"))).status_code == 403
    )


def test_an_operator_sees_both_services_dead_letters_and_a_replay_is_passed_on(
    services: Services, gateway: GatewayFactory, token
) -> None:
    from orders.models import DeadLetter

    DeadLetter.create(
        message_id="m-1",
        queue_name="orders",
        actor_name="confirm_order",
        dedupe_key="dk-1",
        order_id="o-1",
        message="{}",
        error="Traceback: boom",
        attempts=3,
        failed_at=dt.datetime(2026, 12, 7, 10, 0),
    )
    operator = bearer(token("ops", "operator"))
    client = gateway()
    listed = client.simulate_get("/ops/dead-letters", headers=operator)
    assert listed.status_code == 200, listed.text
    assert [(i["service"], i["message_id"]) for i in listed.json["items"]] == [("orders", "m-1")]
    assert listed.json["partial_failures"] == []
    # without RabbitMQ (these services run standalone) the service's 409 is passed on
    replay = client.simulate_post("/ops/dead-letters/orders/m-1/replay", headers=operator)
    assert replay.status_code == 409
    assert replay.json["title"] == "Replay needs RabbitMQ"
    unknown = client.simulate_post("/ops/dead-letters/orders/m-2/replay", headers=operator)
    assert unknown.status_code == 404
    assert (
        client.simulate_post("/ops/dead-letters/nope/m-1/replay", headers=operator).status_code
        == 404
    )
    assert client.simulate_get("/ops/dead-letters", headers=bearer(token("c1"))).status_code == 403


def test_the_order_timeline_and_invoice_look_ups_run_in_parallel(
    services: Services, gateway: GatewayFactory, token, settings: Settings
) -> None:
    # Given a confirmed order, and both services behind a barrier that lets requests
    # through only once three are in flight together (sequential calls would break it)
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    barrier = threading.Barrier(3, timeout=5)
    orders = Rendezvous(services.orders, barrier)
    invoices = Rendezvous(services.invoices, barrier)
    with served(settings, orders, invoices) as (orders_url, invoices_url):
        # When c1 reads the order through the gateway
        client = gateway(orders_url=orders_url, invoices_url=invoices_url, timeout=10)
        result = client.simulate_get(f"/me/orders/{order_id}", headers=bearer(token("c1")))
    # Then the three look-ups met at the barrier: all of them answered
    assert result.status_code == 200, result.text
    assert result.json["invoice"]["order_id"] == order_id
    assert len(result.json["timeline"]) == 2
    assert result.json["partial_failures"] == []


def test_another_customers_order_is_not_found_through_the_gateway(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given an order of c1
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    # When c2 asks for it
    result = gateway().simulate_get(f"/me/orders/{order_id}", headers=bearer(token("c2")))
    # Then it does not exist for c2, exactly like an unknown id
    assert assert_problem(result, 404)["title"] == "Not found"
    unknown = gateway().simulate_get(
        "/me/orders/5bc853e9-0f68-4e5c-9fcf-3649c3179e94", headers=bearer(token("c2"))
    )
    assert_problem(unknown, 404)


def test_no_token_or_a_bad_token_is_401_before_any_service_is_called(
    services: Services, gateway: GatewayFactory, token
) -> None:
    client = gateway()
    # Given no token, a garbage token and a token signed with another key
    other = TokenKeys.hs256(b"another-secret-of-at-least-32-bytes!!", "orderflow", "orderflow")
    for headers in ({}, bearer("not-a-jwt"), bearer(mint(other, "c1", "customer", 300))):
        # When they call the gateway
        for path in ("/me/orders", "/me/orders/5bc853e9-0f68-4e5c-9fcf-3649c3179e94"):
            result = client.simulate_get(path, headers=headers)
            # Then the gateway refuses them itself
            assert_problem(result, 401)
            assert result.headers["www-authenticate"].startswith("Bearer")
    assert services.orders.requests == [] and services.invoices.requests == []


def test_a_401_from_the_orders_service_stays_401(
    services: Services, gateway: GatewayFactory
) -> None:
    # Given a gateway that trusts a key the services do not
    other = TokenKeys.hs256(b"another-secret-of-at-least-32-bytes!!", "orderflow", "orderflow")
    client = gateway(keys=other)
    # When a token the gateway accepts reaches the orders service
    result = client.simulate_get("/me/orders", headers=bearer(mint(other, "c1", "customer", 60)))
    # Then the orders service's 401 is passed on
    assert_problem(result, 401)
    assert result.headers["www-authenticate"].startswith("Bearer")


def test_an_operator_has_no_orders_of_their_own(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # When an operator asks for "their" orders
    result = gateway().simulate_get("/me/orders", headers=bearer(token("ops", "operator")))
    # Then the gateway refuses: these screens are for customers
    assert_problem(result, 403)
    assert services.orders.requests == []


# --- REST: partial failure ----------------------------------------------------------------


@contextlib.contextmanager
def broken(how: str, settings: Settings) -> Iterator[str]:
    """A service URL that is ``down`` (refused), ``silent`` (never answers) or answers
    with the status ``how`` (``"500"``, ``"503"``)."""
    if how == "down":
        with refusing_port() as url:
            yield url
    elif how == "silent":
        with silent_port() as url:
            yield url
    else:
        with served(settings, failing_app(f"{how} Boom")) as [url]:
            yield url


@pytest.mark.parametrize(
    ("how", "reason"), [("down", "unavailable"), ("503", "unavailable"), ("500", "error")]
)
def test_when_invoices_fails_the_list_and_the_detail_answer_with_invoice_null_and_a_marker(
    services: Services, gateway: GatewayFactory, token, settings: Settings, how: str, reason: str
) -> None:
    # Given two confirmed orders, and an invoices service that is down or answers 5xx
    ids = [place(services, token("c1"))["id"] for _ in range(2)]
    services.system.drain()
    with broken(how, settings) as invoices_url:
        client = gateway(invoices_url=invoices_url)
        # When c1 lists the orders and reads one
        listed = client.simulate_get("/me/orders", headers=bearer(token("c1")))
        detail = client.simulate_get(f"/me/orders/{ids[0]}", headers=bearer(token("c1")))
    # Then both answer 200 with the orders, no invoices and a machine-readable marker
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json["items"]] == list(reversed(ids))
    assert all(item["invoice"] is None for item in listed.json["items"])
    assert detail.status_code == 200, detail.text
    assert detail.json["order"]["status"] == "confirmed"
    assert detail.json["invoice"] is None
    assert len(detail.json["timeline"]) == 2
    assert_documented(listed.json, "MyOrderList")
    assert_documented(detail.json, "OrderDetail")
    for answer in (listed.json, detail.json):
        [marker] = answer["partial_failures"]
        assert (marker["service"], marker["reason"]) == ("invoices", reason)
        assert marker["detail"]


def test_when_invoices_is_too_slow_the_gateway_answers_within_about_the_timeout(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given a confirmed order and an invoices service that never answers
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    with silent_port() as invoices_url:
        client = gateway(invoices_url=invoices_url, timeout=0.5)
        for path in (f"/me/orders/{order_id}", "/me/orders"):
            # When c1 reads through the gateway
            started = time.monotonic()
            result = client.simulate_get(path, headers=bearer(token("c1")))
            elapsed = time.monotonic() - started
            # Then the answer comes after about the timeout, without the invoice
            assert result.status_code == 200, result.text
            assert 0.45 <= elapsed < 2.0, elapsed
            [marker] = result.json["partial_failures"]
            assert (marker["service"], marker["reason"]) == ("invoices", "timeout")


@pytest.mark.parametrize(
    ("how", "reason"), [("down", "unavailable"), ("silent", "timeout"), ("500", "error")]
)
def test_when_orders_fails_the_gateway_answers_503_problem_with_retry_after(
    gateway: GatewayFactory, token, settings: Settings, how: str, reason: str
) -> None:
    # Given an orders service that is down, never answers, or answers 500
    with broken(how, settings) as orders_url:
        client = gateway(orders_url=orders_url, timeout=0.5)
        for path in ("/me/orders", "/me/orders/5bc853e9-0f68-4e5c-9fcf-3649c3179e94"):
            # When c1 reads through the gateway
            result = client.simulate_get(path, headers=bearer(token("c1")))
            # Then the gateway answers 503, says which service failed and how, and when to retry
            problem = assert_problem(result, 503)
            assert_documented(problem, "Problem")
            assert result.headers["retry-after"] == "1"
            assert (problem["service"], problem["reason"]) == ("orders", reason)
            assert problem["detail"].startswith("the orders service failed")


# --- health ------------------------------------------------------------------------------


def test_health_is_public_and_ready_names_the_service_that_does_not_answer(
    services: Services, gateway: GatewayFactory
) -> None:
    # Given a gateway in front of both services
    client = gateway()
    # Then /health and /ready answer without a token, ready naming both services
    assert client.simulate_get("/health").json == {"status": "ok", "service": "gateway"}
    ready = client.simulate_get("/ready")
    assert ready.status_code == 200
    assert_documented(ready.json, "Ready")
    assert ready.json["checks"] == {"orders": "ok", "invoices": "ok"}
    # When the invoices service is down, /ready is 503 and names it
    with refusing_port() as down:
        not_ready = gateway(invoices_url=down).simulate_get("/ready")
    problem = assert_problem(not_ready, 503)
    assert_documented(problem, "NotReady")
    assert problem["checks"]["orders"] == "ok"
    assert problem["checks"]["invoices"].startswith("unavailable")
    assert "invoices" in problem["detail"]


# --- GraphQL -----------------------------------------------------------------------------

MY_ORDERS = """
query Mine($status: String, $limit: Int) {
  myOrders(status: $status, limit: $limit) {
    items { order { id total status invoiceNumber lines { sku quantity unitPrice } }
            invoice { id number status total } }
    nextCursor
    partialFailures { service reason detail }
  }
}
"""

ORDER_DETAIL = """
query One($id: ID!) {
  order(id: $id) {
    order { id customerId status invoiceId }
    invoice { id number orderId total currency status issuedAt }
    timeline { event outcome detail traceId }
    partialFailures { service reason }
  }
}
"""

PLACE = """
mutation Place($input: PlaceOrderInput!, $key: String) {
  placeOrder(input: $input, idempotencyKey: $key) { id status total currency lines { unitPrice } }
}
"""

CANCEL = """
mutation Cancel($id: ID!, $key: String) {
  cancelOrder(id: $id, idempotencyKey: $key) { id status cancelReason }
}
"""

GQL_INPUT = {"currency": "EUR", "lines": [{"sku": "SKU-1", "quantity": 2, "unitPrice": "12.34"}]}


def test_graphql_my_orders_and_order_show_orders_with_invoices_and_timeline(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given two confirmed orders of c1
    ids = [place(services, token("c1"))["id"] for _ in range(2)]
    services.system.drain()
    services.invoices.clear()
    client = gateway()
    # When c1 asks for their orders with GraphQL
    result = graphql(client, token("c1"), MY_ORDERS, {"limit": 10})
    # Then they come with invoice summaries, from one batched invoices call
    assert result.status_code == 200, result.text
    assert "errors" not in result.json
    page = result.json["data"]["myOrders"]
    assert [item["order"]["id"] for item in page["items"]] == list(reversed(ids))
    for item in page["items"]:
        assert item["order"]["total"] == "24.68"
        assert item["order"]["lines"] == [{"sku": "SKU-1", "quantity": 2, "unitPrice": "12.34"}]
        assert item["invoice"]["number"] == item["order"]["invoiceNumber"]
    assert page["partialFailures"] == [] and page["nextCursor"] is None
    assert len(services.invoices.to("/invoices")) == 1
    # When c1 asks for one order
    one = graphql(client, token("c1"), ORDER_DETAIL, {"id": ids[0]}).json
    # Then it comes with its invoice and timeline
    detail = one["data"]["order"]
    assert detail["order"] == {
        "id": ids[0],
        "customerId": "c1",
        "status": "confirmed",
        "invoiceId": detail["invoice"]["id"],
    }
    assert (detail["invoice"]["orderId"], detail["invoice"]["total"]) == (ids[0], "24.68")
    assert [step["event"] for step in detail["timeline"]] == ["OrderPlaced", "InvoiceIssued"]
    assert detail["partialFailures"] == []


def test_graphql_place_order_and_cancel_order_go_through_the_orders_service(
    services: Services, gateway: GatewayFactory, token
) -> None:
    client = gateway()
    # When c1 places an order with an idempotency key, twice
    first = graphql(client, token("c1"), PLACE, {"input": GQL_INPUT, "key": "k-1"}).json
    again = graphql(client, token("c1"), PLACE, {"input": GQL_INPUT, "key": "k-1"}).json
    # Then one pending order exists, with money as strings
    placed = first["data"]["placeOrder"]
    assert "errors" not in first
    assert (placed["status"], placed["total"], placed["currency"]) == ("pending", "24.68", "EUR")
    assert placed["lines"] == [{"unitPrice": "12.34"}]
    assert again["data"]["placeOrder"]["id"] == placed["id"]
    assert len([r for r in services.orders.to("/orders") if r.method == "POST"]) == 2
    # When the saga runs and c1 cancels the order
    services.system.drain()
    cancelled = graphql(client, token("c1"), CANCEL, {"id": placed["id"], "key": "c-1"}).json
    # Then it is cancelled by the customer
    assert cancelled["data"]["cancelOrder"] == {
        "id": placed["id"],
        "status": "cancelled",
        "cancelReason": "customer_cancelled",
    }
    # And the cancel reached the orders service with the key
    [cancel] = [r for r in services.orders.requests if r.path.endswith("/cancel")]
    assert cancel.headers["idempotency-key"] == "c-1"


def test_graphql_errors_carry_the_services_status_and_no_stack_trace(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given a confirmed order of c1
    client = gateway()
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    # Then cancelling it twice is the orders service's 409 on the second time
    graphql(client, token("c1"), CANCEL, {"id": order_id})
    conflict = graphql(client, token("c1"), CANCEL, {"id": order_id}).json
    assert conflict["data"] == {"cancelOrder": None}
    assert conflict["errors"][0]["extensions"]["status"] == 409
    assert conflict["errors"][0]["path"] == ["cancelOrder"]
    # And invalid lines are the orders service's 422, naming the fields
    bad = {"currency": "EUR", "lines": [{"sku": "S", "quantity": 0, "unitPrice": "1.234"}]}
    invalid = graphql(client, token("c1"), PLACE, {"input": bad}).json
    extensions = invalid["errors"][0]["extensions"]
    assert extensions["status"] == 422
    assert {e["field"] for e in extensions["errors"]} == {
        "lines[0].quantity",
        "lines[0].unit_price",
    }
    # And another customer's order, and an id that is no UUID, are 404
    for order in (order_id, "../../invoices"):
        missing = graphql(client, token("c2"), ORDER_DETAIL, {"id": order}).json
        assert missing["data"] == {"order": None}
        assert missing["errors"][0]["extensions"]["status"] == 404
    # And an operator has no orders of their own
    forbidden = graphql(client, token("ops", "operator"), MY_ORDERS).json
    assert forbidden["errors"][0]["extensions"]["status"] == 403
    for answer in (conflict, invalid, missing, forbidden):
        assert "stacktrace" not in json.dumps(answer).lower()


def test_graphql_reports_partial_failures_and_orders_failures(
    services: Services, gateway: GatewayFactory, token
) -> None:
    # Given a confirmed order
    order_id = place(services, token("c1"))["id"]
    services.system.drain()
    with refusing_port() as down:
        # When invoices is down, the data still comes, with the marker
        partial = graphql(gateway(invoices_url=down), token("c1"), ORDER_DETAIL, {"id": order_id})
        detail = partial.json["data"]["order"]
        assert detail["invoice"] is None and detail["order"]["status"] == "confirmed"
        assert detail["partialFailures"] == [{"service": "invoices", "reason": "unavailable"}]
        # When orders is down, the field is an error with status 503
        failed = graphql(gateway(orders_url=down), token("c1"), MY_ORDERS).json
    assert failed["data"] == {"myOrders": None}
    assert failed["errors"][0]["extensions"]["status"] == 503
    assert failed["errors"][0]["extensions"]["service"] == "orders"


def test_graphql_without_a_token_is_401(gateway: GatewayFactory, services: Services) -> None:
    # When GraphQL is called without a token, or with a bad one
    result = graphql(gateway(), None, MY_ORDERS)
    assert_problem(result, 401)
    bad = graphql(gateway(), "not-a-jwt", MY_ORDERS)
    # Then the gateway answers 401 itself, like the REST routes
    assert_problem(bad, 401)
    assert services.orders.requests == []


def test_graphql_refuses_bodies_over_64_kib_and_bodies_that_are_not_json(
    gateway: GatewayFactory, token
) -> None:
    # When the body is over 64 KiB, or not JSON
    client = gateway()
    huge = json.dumps({"query": "{ myOrders { nextCursor } }", "pad": "x" * 70_000})
    result = client.simulate_post(
        "/graphql",
        body=huge,
        headers=bearer(token("c1"), **{"Content-Type": "application/json"}),
    )
    # Then it is 413, or 400, as problem+json like the services
    assert_problem(result, 413)
    garbage = client.simulate_post(
        "/graphql", body="{", headers=bearer(token("c1"), **{"Content-Type": "application/json"})
    )
    assert_problem(garbage, 400)


def test_graphql_allows_introspection_but_refuses_queries_too_deep_or_too_costly(
    services: Services, gateway: GatewayFactory, token
) -> None:
    client = gateway()
    # The standard introspection query (a developer tool) is allowed
    schema = graphql(client, token("c1"), get_introspection_query(descriptions=True))
    assert schema.status_code == 200
    assert schema.json["data"]["__schema"]["queryType"]["name"] == "Query"
    # Many aliased look-ups exceed the cost cap before any service is called
    aliases = " ".join(f'o{i}: order(id: "{i}") {{ order {{ id }} }}' for i in range(20))
    costly = graphql(client, token("c1"), f"{{ {aliases} }}")
    assert costly.status_code == 400
    assert "maximum cost" in costly.json["errors"][0]["message"]
    assert services.orders.requests == []
    # A query nesting deeper than the cap is refused
    nested = "{ __schema { types { fields { type { fields { type { fields { type { fields {"
    nested += " type { fields { type { fields { type { name } } } } } } } } } } } } } } }"
    deep = graphql(client, token("c1"), nested)
    assert deep.status_code == 400
    assert "data" not in deep.json
    # A syntax error is a 400 with a GraphQL error
    syntax = graphql(client, token("c1"), "{ myOrders { ")
    assert syntax.status_code == 400
    assert syntax.json["errors"][0]["message"].startswith("Syntax Error")


def test_the_depth_rule_refuses_operations_nested_deeper_than_its_limit() -> None:
    # Given a schema with a cycle, where depth is unbounded
    schema = build_schema("type Query { node: Node } type Node { next: Node, value: Int }")
    rule = depth_limit(4)
    # Then four levels pass, through fragments too, and five do not
    ok = "{ node { next { next { value } } } }"
    via_fragment = "{ node { ...N } } fragment N on Node { next { next { value } } }"
    too_deep = "{ node { next { ...N } } } fragment N on Node { next { next { value } } }"
    assert validate(schema, parse(ok), [rule]) == []
    assert validate(schema, parse(via_fragment), [rule]) == []
    [error] = validate(schema, parse(too_deep), [rule])
    assert "5 levels deep" in error.message
    # And a fragment cycle (which the standard rules report) does not hang it
    cycle = "{ node { ...A } } fragment A on Node { next { ...A } }"
    assert validate(schema, parse(cycle), [rule]) == []
