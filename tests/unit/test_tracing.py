"""Trace propagation in-process (stub broker, in-memory exporter), HTTP SERVER spans and
log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import falcon
import falcon.testing
import peewee
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from actors import catalogue
from invoices import service as invoices
from ops import bootstrap
from ops.logs import JsonFormatter, TraceContext
from ops.settings import Settings
from ops.shared.telemetry.tracing import carried_span_context, current_carrier
from ops.shared.web.problems import handle_unexpected, serialize_problem
from ops.shared.web.spans import TRACE_HEADER, ServerSpans
from orders import service as orders
from orders.domain import Line, NewOrder
from orders.models import OutboxEvent as OrdersOutbox
from orders.queries import get_order

from .conftest import StubSystem, collect_spans
from .test_batches import send_issue_batch, taken_placed_events

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """Finished spans land in EXPORTER (see ``collect_spans``)."""
    collect_spans(EXPORTER)
    yield


@pytest.fixture(autouse=True)
def clean() -> None:
    EXPORTER.clear()


def consumers(actor: str) -> list:
    return [
        s
        for s in EXPORTER.get_finished_spans()
        if s.kind is SpanKind.CONSUMER and s.attributes.get("messaging.dramatiq.actor") == actor
    ]


def ancestry(span: object) -> list:
    """The finished spans above ``span``, nearest first."""
    by_id = {s.context.span_id: s for s in EXPORTER.get_finished_spans()}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_a_retried_step_stays_in_the_trace_of_the_request(
    stub_system: StubSystem,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given issue_invoice fails once with a connection error, then works
    real = invoices.issue_invoice
    calls = []

    def flaky(*args: object, **kwargs: object) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise peewee.OperationalError("connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(invoices, "issue_invoice", flaky)
    # When an order is placed inside a request's span
    with trace.get_tracer("test").start_as_current_span("POST /orders") as request:
        order = orders.place_order(NewOrder("c1", "EUR", (Line("A", 1, 100),)))
    stub_system.drain()
    # Then both attempts and the confirmation share the request's trace
    assert get_order(order.id).status == "confirmed"
    first, second = sorted(consumers("issue_invoice"), key=lambda s: s.start_time)
    trace_id = request.get_span_context().trace_id
    assert {first.context.trace_id, second.context.trace_id} == {trace_id}
    assert consumers("confirm_order")[0].context.trace_id == trace_id
    # the retry was published from inside the failed attempt, then re-published when due
    chain = ancestry(second)
    assert [span.kind for span in chain[:2]] == [SpanKind.PRODUCER, SpanKind.PRODUCER]
    assert chain[1].attributes["orderflow.delay_ms"] > 0
    assert chain[2] is first
    assert first.status.status_code.name == "ERROR"
    assert second.attributes["messaging.dramatiq.retries"] == 1


def test_the_deadline_cancellation_is_a_trace_of_its_own_linked_to_the_orders(
    stub_system: StubSystem,
) -> None:
    with trace.get_tracer("test").start_as_current_span("POST /orders") as request:
        placed = orders.place_order(NewOrder("c1", "EUR", (Line("A", 1, 100),)))
    assert orders.expire_overdue(timeout_seconds=0) == 1
    stub_system.drain()
    (expiry,) = [s for s in EXPORTER.get_finished_spans() if s.name == "expire order"]
    assert expiry.parent is None
    assert expiry.context.trace_id != request.get_span_context().trace_id
    assert [link.context.span_id for link in expiry.links] == [request.get_span_context().span_id]
    assert expiry.attributes["orderflow.order_id"] == str(placed.id)
    # the compensation runs in the expiry's trace (an invoice issued meanwhile asks for
    # it again from its own step, in the order's trace)
    voids = {void.context.trace_id for void in consumers("void_invoice")}
    assert expiry.context.trace_id in voids
    assert voids <= {expiry.context.trace_id, request.get_span_context().trace_id}


def test_json_log_lines_carry_the_trace_and_the_saga_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContext())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    with trace.get_tracer("test").start_as_current_span("step") as span:
        logger.warning("issued", extra={"order_id": "o-1", "dedupe_key": "k-1"})
    line = json.loads(stream.getvalue())
    assert line["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert (line["order_id"], line["dedupe_key"], line["message"]) == ("o-1", "k-1", "issued")


def servers() -> list:
    return [s for s in EXPORTER.get_finished_spans() if s.kind is SpanKind.SERVER]


def test_a_request_gets_a_server_span_that_continues_the_callers_trace(
    settings: Settings, databases: dict, token
) -> None:
    client = falcon.testing.TestClient(bootstrap.build_app(settings, "orders"))
    caller = "0af7651916cd43dd8448eb211c80319c"
    # When a client in a trace of its own places an order
    result = client.simulate_post(
        "/orders",
        json={"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}]},
        headers={
            "Authorization": f"Bearer {token('c1')}",
            "traceparent": f"00-{caller}-b7ad6b7169203331-01",
        },
    )
    # Then one SERVER span, named by the route, is a child of the caller's span
    assert result.status_code == 201
    (span,) = servers()
    assert span.name == "POST /orders"
    assert trace.format_trace_id(span.context.trace_id) == caller
    assert span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["http.route"] == "/orders"
    assert span.attributes["url.path"] == "/orders"
    assert span.attributes["http.response.status_code"] == 201
    assert span.status.status_code.name == "UNSET"
    # and the client learns the trace id, which the order's timeline names too
    assert result.headers[TRACE_HEADER] == caller
    order_id = result.json["id"]
    timeline = client.simulate_get(
        f"/orders/{order_id}/timeline", headers={"Authorization": f"Bearer {token('c1')}"}
    )
    assert {step["trace_id"] for step in timeline.json["items"]} == {caller}


def test_a_refused_request_is_traced_and_probes_are_not(
    settings: Settings, databases: dict
) -> None:
    client = falcon.testing.TestClient(bootstrap.build_app(settings, "orders"))
    # A request without a token is answered 401 in a trace of its own
    refused = client.simulate_get("/orders")
    assert refused.status_code == 401
    (span,) = servers()
    assert span.attributes["http.response.status_code"] == 401
    assert span.parent is None
    assert refused.headers[TRACE_HEADER] == trace.format_trace_id(span.context.trace_id)
    # Health probes, readiness, scrapes and the API description get no span
    EXPORTER.clear()
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        answered = client.simulate_get(path)
        assert answered.status_code == 200, path
        assert TRACE_HEADER not in answered.headers
    assert servers() == []


def test_an_unexpected_error_marks_the_server_span_and_records_the_exception() -> None:
    class Broken:
        def on_get(self, req: falcon.Request, resp: falcon.Response, thing_id: str) -> None:
            raise RuntimeError("boom")

    app = falcon.App(middleware=[ServerSpans()])
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_route("/things/{thing_id}", Broken())
    result = falcon.testing.TestClient(app).simulate_get("/things/7")
    assert result.status_code == 500
    (span,) = servers()
    assert span.name == "GET /things/{thing_id}"
    assert span.attributes["url.path"] == "/things/7"
    assert span.status.status_code.name == "ERROR"
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes["exception.message"] == "boom"
    # the context the request attached is gone once it is answered
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_batch_links_to_each_orders_trace_and_runs_each_step_in_that_trace(
    stub_system: StubSystem,
) -> None:
    # Given three orders, each placed in a request span of its own
    placed, requests = [], []
    for _ in range(3):
        with trace.get_tracer("test").start_as_current_span("POST /orders") as request:
            placed.append(str(orders.place_order(NewOrder("c1", "EUR", (Line("A", 1, 100),))).id))
        requests.append(request.get_span_context())
    # When their OrderPlaced events, each with its request's trace context as the relay
    # reads it from the outbox, travel to the invoices worker as one batch message
    events = [
        catalogue.BatchEvent(event.event_id, event.payload, carrier)
        for event, carrier in zip(
            taken_placed_events(*placed), stored_trace_contexts(placed), strict=True
        )
    ]
    send_issue_batch(stub_system, events)
    # Then the batch is processed in one CONSUMER span linked to each order's trace
    (batch,) = consumers("issue_invoices")
    assert batch.attributes["messaging.batch.message_count"] == 3
    assert [ids(link.context) for link in batch.links] == [ids(r) for r in requests]
    # And each order's step has its own span in that order's trace, a child of the
    # request, linked back to the batch, and its confirmation follows in the same trace
    steps = {span.attributes["orderflow.order_id"]: span for span in consumers("issue_invoice")}
    confirmations = {s.attributes["orderflow.order_id"]: s for s in consumers("confirm_order")}
    for order_id, request in zip(placed, requests, strict=True):
        step = steps[order_id]
        assert ids(step.parent) == ids(request)
        assert [ids(link.context) for link in step.links] == [ids(batch.context)]
        assert confirmations[order_id].context.trace_id == request.trace_id
        assert get_order(order_id).status == "confirmed"


def ids(span_context: trace.SpanContext) -> tuple[int, int]:
    return span_context.trace_id, span_context.span_id


def stored_trace_contexts(order_ids: list[str]) -> list[dict[str, str]]:
    """The trace context stored with each order's ``OrderPlaced`` outbox row."""
    rows = OrdersOutbox.select().where(
        (OrdersOutbox.event_type == "OrderPlaced") & OrdersOutbox.aggregate_id.in_(order_ids)
    )
    stored = {row.aggregate_id: json.loads(row.trace_context) for row in rows}
    return [stored[order_id] for order_id in order_ids]


def test_a_carried_traceparent_is_read_directly_and_anything_else_by_the_propagators() -> None:
    # Given the carrier orderflow stores for a span (a lone W3C traceparent)
    with trace.get_tracer("test").start_as_current_span("request") as span:
        carrier = current_carrier()
    sent = span.get_span_context()
    # Then it is read back as that span's context, remote
    parsed = carried_span_context(carrier)
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.trace_flags) == (
        sent.trace_id,
        sent.span_id,
        sent.trace_flags,
    )
    assert parsed.is_remote
    # And a carrier with more than a traceparent goes through the propagators, same answer
    assert ids(carried_span_context({**carrier, "tracestate": "k=v"})) == ids(parsed)
    # And what the propagators reject is no context at all
    for bad in (
        {},
        None,
        {"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"},  # an all-zero trace id
        {"traceparent": "00-" + "A" * 32 + "-" + "1" * 16 + "-01"},  # upper-case hex
        {"traceparent": "garbage"},
    ):
        assert carried_span_context(bad) is None
