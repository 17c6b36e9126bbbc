"""The OpenAPI descriptions stay true: every route is described and every described
route exists, each document is valid OpenAPI 3.1, and real answers of the apps (on
SQLite, through Falcon's test client) match the documented schemas."""

from __future__ import annotations

import importlib.util
import json
import uuid
from typing import Any

import falcon
import falcon.testing
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from ops import bootstrap
from ops.settings import Settings
from ops.shared.web.openapi import OpenApiDocument, load_document, openapi_path, routes_of

from .conftest import StubSystem

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PUBLIC_PATHS = {"/health", "/ready", "/openapi.json", "/metrics", "/console", "/console/{name}"}
ORDER = {"currency": "EUR", "lines": [{"sku": "BOOK-1", "quantity": 2, "unit_price": "12.34"}]}


def _has_gateway() -> bool:
    return (
        importlib.util.find_spec("gateway") is not None
        and importlib.util.find_spec("gateway.app") is not None
    )


SERVICES = [
    "orders",
    "invoices",
    pytest.param(
        "gateway",
        marks=pytest.mark.skipif(not _has_gateway(), reason="gateway/app.py does not exist yet"),
    ),
    "audit",
]


DOCUMENTS = {"audit": "ops.audit"}  # where a part's description lives, if not its package


def document_of(service: str) -> dict[str, Any]:
    """The OpenAPI description a part ships."""
    return load_document(DOCUMENTS.get(service, service))


def build_app(settings: Settings, service: str) -> falcon.App:
    """The service's app as ``orderflow serve`` builds it, serving its description."""
    app = bootstrap.build_app(settings, service)
    app.add_route("/openapi.json", OpenApiDocument(document_of(service)))
    return app


def described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def pointer(*parts: str) -> str:
    """A JSON pointer to ``parts`` (escaping ``~`` and ``/``)."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(document: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Follow a local ``$ref`` (response or header objects); returns the target and its
    pointer (None when ``node`` was not a reference)."""
    if "$ref" not in node:
        return node, None
    target: Any = document
    ref = node["$ref"].removeprefix("#")
    for part in ref.split("/")[1:]:
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, ref


class Description:
    """One service's document, with validators for its documented answers."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.document = document_of(service)
        self.uri = f"urn:orderflow:openapi:{service}"
        self.registry = Registry().with_resource(
            self.uri, DRAFT202012.create_resource(self.document)
        )

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.document["paths"][path][method.lower()]

    def response(self, method: str, path: str, status: int) -> tuple[dict[str, Any], str]:
        """The response object documented for ``status`` and the pointer to it."""
        responses = self.operation(method, path)["responses"]
        assert str(status) in responses, f"{method} {path} does not document {status}"
        response, ref = resolve(self.document, responses[str(status)])
        return response, ref or pointer("paths", path, method.lower(), "responses", str(status))

    def check(self, method: str, path: str, result: falcon.testing.Result) -> None:
        """Assert that ``result`` is a documented answer of ``method path``: its status,
        content type, body schema (JSON Schema 2020-12, formats checked) and the
        documented headers."""
        response, at = self.response(method, path, result.status_code)
        content_type = result.headers.get("content-type", "").split(";")[0]
        assert content_type in response.get("content", {}), (
            f"{method} {path} {result.status_code}: {content_type} is not documented"
        )
        schema_at = at + pointer("content", content_type, "schema")
        validator = Draft202012Validator(
            {"$ref": f"{self.uri}#{schema_at}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        problems = [
            f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(
                result.json if content_type.endswith("json") else result.text
            )
        ]
        assert not problems, f"{method} {path} {result.status_code}:\n" + "\n".join(problems)
        for name, declared in response.get("headers", {}).items():
            header, _ = resolve(self.document, declared)
            value = result.headers.get(name.lower())
            if value is None:
                assert not header.get("required"), f"{method} {path}: no {name} header"
                continue
            header_validator = Draft202012Validator(
                header["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            assert header_validator.is_valid(value), f"{name}: {value!r} is not as documented"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def concrete(path: str) -> str:
    """A requestable path for an OpenAPI path template (ids that do not exist)."""
    return (
        path.replace("{order_id}", str(uuid.UUID(int=1)))
        .replace("{invoice_id}", str(uuid.UUID(int=2)))
        .replace("{customer_id}", "c1")
        .replace("{name}", "index.html")
        .replace("{message_id}", "no-such-message")
        .replace("{service}", "orders")
    )


# -- the documents and the apps agree --------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_an_app_serves_is_described_and_every_described_route_exists(
    settings: Settings, databases: dict, service: str
) -> None:
    served = routes_of(build_app(settings, service))
    described = described_operations(document_of(service))
    assert sorted(served - described) == [], "served but not described"
    assert sorted(described - served) == [], "described but not served"


@pytest.mark.parametrize("service", SERVICES)
def test_each_description_is_a_valid_openapi_3_1_document(service: str) -> None:
    document = document_of(service)
    assert document["openapi"] == "3.1.0"
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []
    Draft202012Validator.check_schema(
        {"$defs": document["components"]["schemas"]}
    )  # every component schema is valid JSON Schema 2020-12


@pytest.mark.parametrize("service", SERVICES)
def test_bearer_tokens_are_required_everywhere_but_the_public_paths(service: str) -> None:
    document = document_of(service)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert document["security"] == [{"bearerAuth": []}]
    for method, path in described_operations(document):
        operation = document["paths"][path][method.lower()]
        if path in PUBLIC_PATHS:
            assert operation.get("security") == [], f"{method} {path} should be public"
        else:
            assert "security" not in operation, f"{method} {path} overrides the security"
            assert "401" in operation["responses"], f"{method} {path} documents no 401"


@pytest.mark.parametrize("service", SERVICES)
def test_an_operation_without_a_token_answers_as_its_security_says(
    settings: Settings, databases: dict, service: str
) -> None:
    description = Description(service)
    client = falcon.testing.TestClient(build_app(settings, service))
    for method, path in sorted(described_operations(description.document)):
        if path == "/ready":
            continue  # its answer depends on the broker and the services, not on tokens
        result = client.simulate_request(
            method, concrete(path), json={} if method != "GET" else None
        )
        if path in PUBLIC_PATHS:
            assert result.status_code == 200, f"{method} {path}: {result.status_code}"
        else:
            assert result.status_code == 401, f"{method} {path}: {result.status_code}"
        description.check(method, path, result)


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_route_serves_the_packaged_document_as_json(
    settings: Settings, databases: dict, service: str
) -> None:
    result = falcon.testing.TestClient(build_app(settings, service)).simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    assert result.json == document_of(service)


def test_falcon_templates_become_openapi_paths() -> None:
    assert openapi_path("/orders/{order_id:uuid}/cancel") == "/orders/{order_id}/cancel"
    assert openapi_path("/a/{n:int(min=1)}/{name}") == "/a/{n}/{name}"


def test_routes_leave_out_falcons_default_responders() -> None:
    class OnlyGet:
        def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
            resp.media = {}

    app = falcon.App()
    app.add_route("/items/{item_id:int}", OnlyGet())
    assert routes_of(app) == {("GET", "/items/{item_id}")}


# -- real answers match the documented schemas ----------------------------------------


@pytest.fixture
def clients(settings: Settings, stub_system: StubSystem, token) -> dict[str, Any]:
    """Falcon test clients of both services, as customer c1 unless told otherwise."""
    return {
        service: falcon.testing.TestClient(
            build_app(settings, service), headers=bearer(token("c1"))
        )
        for service in ("orders", "invoices")
    }


@pytest.fixture
def orders() -> Description:
    return Description("orders")


@pytest.fixture
def invoices() -> Description:
    return Description("invoices")


def place(clients: dict[str, Any], body: dict[str, Any] = ORDER) -> falcon.testing.Result:
    return clients["orders"].simulate_post(
        "/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


def test_a_created_order_matches_its_description(clients, orders: Description) -> None:
    result = place(clients)
    assert result.status_code == 201
    orders.check("POST", "/orders", result)
    key = {"Idempotency-Key": "replay-me"}
    first = clients["orders"].simulate_post("/orders", json=ORDER, headers=key)
    replay = clients["orders"].simulate_post("/orders", json=ORDER, headers=key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == first.headers["location"]
    orders.check("POST", "/orders", replay)


def test_an_order_list_matches_its_description(
    clients, stub_system: StubSystem, orders: Description
) -> None:
    for _ in range(3):
        place(clients)
    stub_system.drain()
    page = clients["orders"].simulate_get("/orders", params={"limit": "2"})
    assert page.status_code == 200
    assert len(page.json["items"]) == 2
    assert page.json["next_cursor"]
    orders.check("GET", "/orders", page)
    last = clients["orders"].simulate_get("/orders", params={"cursor": page.json["next_cursor"]})
    assert last.json["next_cursor"] is None
    orders.check("GET", "/orders", last)


def test_a_confirmed_order_and_its_timeline_match_their_descriptions(
    clients, stub_system: StubSystem, orders: Description
) -> None:
    order_id = place(clients).json["id"]
    stub_system.drain()
    order = clients["orders"].simulate_get(f"/orders/{order_id}")
    assert order.json["status"] == "confirmed"
    orders.check("GET", "/orders/{order_id}", order)
    timeline = clients["orders"].simulate_get(f"/orders/{order_id}/timeline")
    assert [step["event"] for step in timeline.json["items"]] == ["OrderPlaced", "InvoiceIssued"]
    orders.check("GET", "/orders/{order_id}/timeline", timeline)


def test_a_cancelled_order_and_its_void_invoice_match_their_descriptions(
    clients, stub_system: StubSystem, orders: Description, invoices: Description
) -> None:
    order_id = place(clients).json["id"]
    stub_system.drain()
    cancelled = clients["orders"].simulate_post(f"/orders/{order_id}/cancel")
    assert cancelled.json["cancel_reason"] == "customer_cancelled"
    orders.check("POST", "/orders/{order_id}/cancel", cancelled)
    stub_system.drain()
    again = clients["orders"].simulate_post(f"/orders/{order_id}/cancel")
    assert again.status_code == 409
    orders.check("POST", "/orders/{order_id}/cancel", again)
    timeline = clients["orders"].simulate_get(f"/orders/{order_id}/timeline")
    orders.check("GET", "/orders/{order_id}/timeline", timeline)
    void = clients["invoices"].simulate_get("/invoices", params={"order_id": order_id})
    assert void.json["items"][0]["status"] == "void"
    invoices.check("GET", "/invoices", void)


def test_an_invoice_and_its_payment_match_their_descriptions(
    clients, stub_system: StubSystem, orders: Description, invoices: Description
) -> None:
    order_id = place(clients).json["id"]
    stub_system.drain()
    invoice_id = clients["orders"].simulate_get(f"/orders/{order_id}").json["invoice_id"]
    invoice = clients["invoices"].simulate_get(f"/invoices/{invoice_id}")
    assert invoice.status_code == 200
    invoices.check("GET", "/invoices/{invoice_id}", invoice)
    listed = clients["invoices"].simulate_get(
        "/invoices", params={"order_id": [order_id, str(uuid.uuid4())], "status": "issued"}
    )
    assert [item["id"] for item in listed.json["items"]] == [invoice_id]
    invoices.check("GET", "/invoices", listed)
    wrong = clients["invoices"].simulate_post(
        f"/invoices/{invoice_id}/payments", json={"amount": "1.00"}
    )
    assert wrong.status_code == 422
    invoices.check("POST", "/invoices/{invoice_id}/payments", wrong)
    paid = clients["invoices"].simulate_post(
        f"/invoices/{invoice_id}/payments", json={"amount": invoice.json["total"]}
    )
    assert paid.json["status"] == "paid"
    invoices.check("POST", "/invoices/{invoice_id}/payments", paid)
    stub_system.drain()
    order = clients["orders"].simulate_get(f"/orders/{order_id}")
    assert order.json["status"] == "paid"
    orders.check("GET", "/orders/{order_id}", order)


def test_an_account_matches_its_description(
    clients, stub_system: StubSystem, token, invoices: Description
) -> None:
    place(clients)
    stub_system.drain()
    account = clients["invoices"].simulate_get("/accounts/c1")
    assert account.json["outstanding"] == "24.68"
    invoices.check("GET", "/accounts/{customer_id}", account)
    operator = bearer(token("ops", "operator"))
    lowered = clients["invoices"].simulate_put(
        "/accounts/c1", json={"credit_limit": "10"}, headers=operator
    )
    assert lowered.json["available"] == "-14.68"
    invoices.check("PUT", "/accounts/{customer_id}", lowered)
    refused = clients["invoices"].simulate_put("/accounts/c1", json={"credit_limit": "10"})
    assert refused.status_code == 403
    invoices.check("PUT", "/accounts/{customer_id}", refused)


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "eur", "lines": [{"sku": "", "quantity": 0, "unit_price": "1.234"}]},
        {"currency": "EUR", "lines": [], "customer_id": "c2"},
        {"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": 1.5}]},
    ],
)
def test_a_422_problem_matches_its_description(
    clients, orders: Description, body: dict[str, Any]
) -> None:
    result = place(clients, body)
    assert result.status_code == 422
    assert result.json["errors"]
    orders.check("POST", "/orders", result)


def test_other_problems_match_their_descriptions(clients, orders: Description) -> None:
    client = clients["orders"]
    missing = client.simulate_get(f"/orders/{uuid.uuid4()}")
    orders.check("GET", "/orders/{order_id}", missing)
    malformed = client.simulate_post(
        "/orders", body="{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    orders.check("POST", "/orders", malformed)
    text = client.simulate_post("/orders", body="x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    orders.check("POST", "/orders", text)
    large = client.simulate_post(
        "/orders", body=json.dumps({"pad": "x" * 70_000}), content_type="application/json"
    )
    assert large.status_code == 413
    orders.check("POST", "/orders", large)
    bad_page = client.simulate_get("/orders", params={"limit": "0", "cursor": "nope"})
    assert bad_page.status_code == 422
    orders.check("GET", "/orders", bad_page)


@pytest.mark.parametrize("service", ["orders", "invoices", "audit"])
def test_health_and_readiness_match_their_descriptions(
    settings: Settings, databases: dict, service: str
) -> None:
    description = Description(service)
    client = falcon.testing.TestClient(build_app(settings, service))
    for path in ("/health", "/ready"):
        result = client.simulate_get(path)
        assert result.status_code == 200
        description.check("GET", path, result)
