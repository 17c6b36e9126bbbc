"""Both HTTP APIs through Falcon's test client on SQLite: shapes, errors and idempotency."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import falcon.testing
import pytest

from ops import bootstrap
from ops.settings import Settings
from orders.models import Order

ORDER = {
    "currency": "EUR",
    "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "12.34"}],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def orders_client(settings: Settings, databases: dict, token) -> falcon.testing.TestClient:
    """The orders app, called as customer c1 unless a test says otherwise."""
    return falcon.testing.TestClient(
        bootstrap.build_app(settings, "orders"), headers=bearer(token("c1"))
    )


@pytest.fixture
def invoices_client(settings: Settings, databases: dict, token) -> falcon.testing.TestClient:
    """The invoices app, called as customer c1 unless a test says otherwise."""
    return falcon.testing.TestClient(
        bootstrap.build_app(settings, "invoices"), headers=bearer(token("c1"))
    )


def post(
    client: falcon.testing.TestClient,
    path: str,
    body: object,
    key: str | None = None,
    content_type: str = "application/json",
    auth: str | None = None,
) -> falcon.testing.Result:
    headers = {"Content-Type": content_type}
    if auth:
        headers.update(bearer(auth))
    if key:
        headers["Idempotency-Key"] = key
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.simulate_post(path, body=raw, headers=headers)


def problem_fields(result: falcon.testing.Result) -> list[str]:
    assert result.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in result.json.get("errors", [])]


def test_placing_an_order_answers_201_with_the_order_and_its_location(orders_client) -> None:
    result = post(orders_client, "/orders", ORDER)
    assert result.status_code == 201
    order = result.json
    assert result.headers["location"] == f"/orders/{order['id']}"
    assert order["total"] == "24.68"
    assert order["status"] == "pending"
    assert set(order) == {
        "id",
        "customer_id",
        "lines",
        "total",
        "currency",
        "status",
        "cancel_reason",
        "invoice_id",
        "invoice_number",
        "created_at",
        "updated_at",
    }
    assert orders_client.simulate_get(f"/orders/{order['id']}").json == order


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"sku": "A", "quantity": 0, "unit_price": "1.00"}, "lines[0].quantity"),
        ({"sku": "A", "quantity": -3, "unit_price": "1.00"}, "lines[0].quantity"),
        ({"sku": "A", "quantity": 10001, "unit_price": "1.00"}, "lines[0].quantity"),
        ({"sku": "A", "quantity": 1.5, "unit_price": "1.00"}, "lines[0].quantity"),
        ({"sku": "A", "quantity": 1, "unit_price": "1.005"}, "lines[0].unit_price"),
        ({"sku": "A", "quantity": 1, "unit_price": "0.00"}, "lines[0].unit_price"),
        ({"sku": "A", "quantity": 1, "unit_price": "-1.00"}, "lines[0].unit_price"),
        ({"sku": "A", "quantity": 1, "unit_price": "NaN"}, "lines[0].unit_price"),
        ({"sku": "A", "quantity": 1, "unit_price": "Infinity"}, "lines[0].unit_price"),
        ({"sku": "A", "quantity": 1, "unit_price": 1.5}, "lines[0].unit_price"),
        ({"sku": "A\u0000", "quantity": 1, "unit_price": "1.00"}, "lines[0].sku"),
    ],
)
def test_invalid_lines_are_422_naming_the_field(orders_client, line, field) -> None:
    result = post(orders_client, "/orders", {**ORDER, "lines": [line]})
    assert result.status_code == 422
    assert problem_fields(result) == [field]
    assert Order.select().count() == 0


def test_nan_and_infinity_literals_are_422_naming_the_field(orders_client) -> None:
    raw = (
        '{"currency": "EUR", "lines": ['
        '{"sku": "A", "quantity": 1, "unit_price": NaN},'
        '{"sku": "B", "quantity": 1, "unit_price": Infinity}]}'
    )
    result = post(orders_client, "/orders", raw)
    assert result.status_code == 422
    assert problem_fields(result) == ["lines[0].unit_price", "lines[1].unit_price"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**ORDER, "lines": []}, ["lines"]),
        ({**ORDER, "lines": [ORDER["lines"][0]] * 101}, ["lines"]),
        ({**ORDER, "currency": "eur"}, ["currency"]),
        ({**ORDER, "currency": "EURO"}, ["currency"]),
        ({**ORDER, "customer_id": ""}, ["customer_id"]),
        ({**ORDER, "customer_id": "c\u00001"}, ["customer_id"]),
        ({**ORDER, "total": "1.00"}, ["total"]),
        ({"lines": ORDER["lines"]}, ["currency"]),
    ],
)
def test_invalid_orders_are_422_naming_every_field(orders_client, body, fields) -> None:
    result = post(orders_client, "/orders", body)
    assert result.status_code == 422
    assert problem_fields(result) == fields


def test_malformed_json_is_400(orders_client) -> None:
    result = post(orders_client, "/orders", '{"customer_id": ')
    assert result.status_code == 400
    assert result.json["title"] == "Malformed JSON"


def test_a_json_body_that_is_not_an_object_is_422(orders_client) -> None:
    assert post(orders_client, "/orders", "[1, 2]").status_code == 422


def test_a_wrong_content_type_is_415(orders_client) -> None:
    result = post(orders_client, "/orders", json.dumps(ORDER), content_type="text/plain")
    assert result.status_code == 415
    assert result.headers["content-type"] == "application/problem+json"


def test_a_body_over_64_kib_is_413(orders_client) -> None:
    result = post(orders_client, "/orders", "x" * (64 * 1024 + 1))
    assert result.status_code == 413
    assert Order.select().count() == 0


def test_unknown_ids_and_paths_are_404_problems(orders_client, invoices_client) -> None:
    for client, path in [
        (orders_client, f"/orders/{uuid.uuid4()}"),
        (orders_client, "/orders/not-a-uuid"),
        (invoices_client, f"/invoices/{uuid.uuid4()}"),
        (orders_client, "/nowhere"),
    ]:
        result = client.simulate_get(path)
        assert result.status_code == 404
        assert result.headers["content-type"] == "application/problem+json"


def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(
    orders_client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orders import service

    def explode(new: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "place_order", explode)
    result = post(orders_client, "/orders", ORDER)
    assert result.status_code == 500
    assert "secret" not in result.text
    assert "Traceback" not in result.text


def test_the_same_idempotency_key_and_body_replays_the_first_response(orders_client) -> None:
    first = post(orders_client, "/orders", ORDER, key="key-1")
    again = post(orders_client, "/orders", ORDER, key="key-1")
    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert Order.select().count() == 1


def test_the_same_idempotency_key_with_another_body_is_422(orders_client) -> None:
    post(orders_client, "/orders", ORDER, key="key-1")
    other = post(orders_client, "/orders", {**ORDER, "currency": "USD"}, key="key-1")
    assert other.status_code == 422
    assert Order.select().count() == 1


def test_concurrent_requests_with_one_key_create_one_order(orders_client) -> None:
    barrier = threading.Barrier(10)

    def send(_: int) -> int:
        barrier.wait()
        return post(orders_client, "/orders", ORDER, key="same").status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(send, range(10)))
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert Order.select().count() == 1


def test_listing_pages_through_orders_with_a_keyset_cursor(orders_client, token) -> None:
    created = [post(orders_client, "/orders", ORDER).json["id"] for _ in range(5)]
    post(orders_client, "/orders", ORDER, auth=token("other"))
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = orders_client.simulate_get("/orders", query_string=query).json
        seen += [order["id"] for order in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


def test_listing_rejects_bad_filters(orders_client) -> None:
    result = orders_client.simulate_get("/orders", query_string="status=lost&limit=500&cursor=x")
    assert result.status_code == 422
    assert problem_fields(result) == ["status", "limit", "cursor"]


def test_listing_filters_by_cancel_reason_and_by_the_time_an_order_was_placed(
    orders_client, token
) -> None:
    kept, cancelled = (post(orders_client, "/orders", ORDER).json for _ in range(2))
    orders_client.simulate_post(f"/orders/{cancelled['id']}/cancel")
    post(orders_client, "/orders", ORDER, auth=token("other"))

    def listed(query: str, **auth: str) -> list[str]:
        result = orders_client.simulate_get("/orders", query_string=query, **auth)
        assert result.status_code == 200, result.text
        return [order["id"] for order in result.json["items"]]

    assert listed("cancel_reason=customer_cancelled") == [cancelled["id"]]
    assert listed("cancel_reason=expired") == []
    placed = kept["created_at"]
    assert listed(f"created_after={placed}") == [cancelled["id"], kept["id"]]
    assert listed(f"created_before={placed}") == []
    assert listed(f"created_after={placed}&created_before={cancelled['created_at']}") == [
        kept["id"]
    ]
    # the same instant with an offset instead of a Z
    offset = placed.replace("Z", "+00:00").replace("+", "%2B")
    assert listed(f"created_after={offset}") == [cancelled["id"], kept["id"]]
    # an operator sees every customer's, filtered the same way
    operator = {"headers": bearer(token("ops", "operator"))}
    assert len(listed(f"created_after={placed}", **operator)) == 3


def test_listing_rejects_a_time_without_a_zone_and_an_unknown_reason(orders_client) -> None:
    result = orders_client.simulate_get(
        "/orders",
        query_string="created_after=2026-12-07T10:00:00&cancel_reason=lost&created_before=x",
    )
    assert result.status_code == 422
    assert problem_fields(result) == ["cancel_reason", "created_after", "created_before"]


def test_cancelling_twice_is_409(orders_client) -> None:
    order_id = post(orders_client, "/orders", ORDER).json["id"]
    first = orders_client.simulate_post(f"/orders/{order_id}/cancel")
    assert (first.status_code, first.json["status"]) == (200, "cancelled")
    assert first.json["cancel_reason"] == "customer_cancelled"
    assert orders_client.simulate_post(f"/orders/{order_id}/cancel").status_code == 409


def test_accounts_default_and_can_be_set_by_operators(invoices_client, token) -> None:
    operator = bearer(token("ops", "operator"))
    assert invoices_client.simulate_get("/accounts/c9", headers=operator).json == {
        "customer_id": "c9",
        "credit_limit": "1000.00",
        "outstanding": "0.00",
        "available": "1000.00",
    }
    result = invoices_client.simulate_put(
        "/accounts/c9", json={"credit_limit": "100.50"}, headers=operator
    )
    assert result.json["credit_limit"] == "100.50"
    bad = invoices_client.simulate_put("/accounts/c9", json={"credit_limit": 100}, headers=operator)
    assert (bad.status_code, problem_fields(bad)) == (422, ["credit_limit"])


def test_health_and_ready_answer(orders_client, invoices_client) -> None:
    for client in (orders_client, invoices_client):
        assert client.simulate_get("/health").status_code == 200
        ready = client.simulate_get("/ready")
        assert (ready.status_code, ready.json["checks"]) == (
            200,
            {"database": "ok", "broker": "ok", "parts": "ok"},
        )


def test_payments_need_the_exact_total_and_a_live_invoice(
    stub_system,
    orders_client,
    invoices_client,
) -> None:
    # Given two confirmed orders with their invoices
    first, second = (post(orders_client, "/orders", ORDER).json["id"] for _ in range(2))
    stub_system.drain()
    invoice_of = {
        order_id: orders_client.simulate_get(f"/orders/{order_id}").json["invoice_id"]
        for order_id in (first, second)
    }
    pay = f"/invoices/{invoice_of[first]}/payments"
    # A wrong amount is 422, the exact total pays, and paying again is 409
    assert post(invoices_client, pay, {"amount": "24.67"}).status_code == 422
    assert post(invoices_client, pay, {"amount": 24.68}).status_code == 422
    paid = post(invoices_client, pay, {"amount": "24.68"}, key="pay-1")
    assert (paid.status_code, paid.json["status"]) == (200, "paid")
    assert post(invoices_client, pay, {"amount": "24.68"}, key="pay-1").json == paid.json
    assert post(invoices_client, pay, {"amount": "24.68"}).status_code == 409
    # Paying a void invoice is 409
    orders_client.simulate_post(f"/orders/{second}/cancel")
    stub_system.drain()
    void = post(invoices_client, f"/invoices/{invoice_of[second]}/payments", {"amount": "24.68"})
    assert void.status_code == 409
    # Listing filters by order and status
    listed = invoices_client.simulate_get("/invoices", query_string="status=void").json
    assert [item["order_id"] for item in listed["items"]] == [second]
