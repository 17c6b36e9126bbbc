"""Bodies a decoder may choke on, sent to a JSON endpoint of each front: every one is
answered 4xx problem+json, never 5xx."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon.testing
import pytest

from ops import bootstrap
from ops.settings import Settings
from ops.shared.web.bodies import MAX_DEPTH

# the gateway's fixtures, used through request.getfixturevalue below
from .test_gateway import bearer, gateway, services  # noqa: F401


def nested(levels: int) -> bytes:
    """A JSON object whose one field holds arrays nested so that the body is ``levels``
    deep in all."""
    return b'{"lines":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


HOSTILE: dict[str, tuple[bytes, str, int]] = {
    # name: (body, content type, status)
    "nested 5,000 deep": (nested(5000), "application/json", 400),
    "nested one level too deep": (nested(MAX_DEPTH + 1), "application/json", 400),
    "a key twice": (b'{"currency": "EUR", "currency": "USD"}', "application/json", 400),
    "an integer of 5,000 digits": (b'{"amount": ' + b"9" * 5000 + b"}", "application/json", 400),
    "invalid UTF-8": (b'{"currency": "\xff\xfe"}', "application/json", 400),
    "a lone surrogate": (b'{"currency": "\\ud800"}', "application/json", 422),
    "a 60 KB string": (b'{"currency": "' + b"E" * 60_000 + b'"}', "application/json", 422),
    "a huge exponent": (b'{"amount": 1e999999999}', "application/json", 422),
    "text/plain": (b'{"currency": "EUR"}', "text/plain", 415),
    "JSON as form data": (b"currency=EUR", "application/x-www-form-urlencoded", 415),
    "no content type": (b'{"currency": "EUR"}', "", 415),
}

Post = Callable[[bytes, str], falcon.testing.Result]


@pytest.fixture(params=["orders", "invoices", "gateway"])
def post(request: pytest.FixtureRequest, settings: Settings, token) -> Post:
    """POST a raw body to a JSON endpoint of one front: POST /orders, POST
    /invoices/{id}/payments, POST /graphql."""
    headers = bearer(token("c1"))
    if request.param == "gateway":
        client = request.getfixturevalue("gateway")()
        path = "/graphql"
    else:
        request.getfixturevalue("databases")
        client = falcon.testing.TestClient(bootstrap.build_app(settings, request.param))
        path = "/orders" if request.param == "orders" else f"/invoices/{uuid.uuid4()}/payments"

    def send(body: bytes, content_type: str) -> falcon.testing.Result:
        extra = {"Content-Type": content_type} if content_type else {}
        return client.simulate_post(path, body=body, headers={**headers, **extra})

    return send


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_body_is_a_client_error_with_a_problem_document(post: Post, name: str) -> None:
    body, content_type, status = HOSTILE[name]
    result = post(body, content_type)
    assert result.status_code < 500, result.text
    assert "traceback" not in result.text.lower()
    if status != 422:  # refused before any endpoint looks at the fields
        assert result.status_code == status, result.text
        assert result.headers["content-type"] == "application/problem+json"
    elif result.headers["content-type"] != "application/problem+json":
        # well-formed JSON that is no GraphQL request: GraphQL's own error document
        assert result.json["errors"], result.text


def test_a_body_nested_exactly_to_the_limit_is_not_refused_for_its_depth(post: Post) -> None:
    result = post(nested(MAX_DEPTH), "application/json")
    assert result.status_code < 500, result.text
    assert "levels deep" not in result.text
