"""One trace per order across HTTP, the outboxes, RabbitMQ and both databases."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .cluster import Cluster, wait_until
from .otlp_receiver import Receiver, Span, otlp_receiver, render_tree


@pytest.fixture
def traced(make_cluster) -> Iterator[tuple[Cluster, Receiver]]:
    """A distributed system whose every process exports spans to an in-process receiver."""
    with otlp_receiver() as receiver:
        cluster = make_cluster(
            OTEL_TRACES_EXPORTER="otlp",
            ORDERFLOW_TRACE_SQL="true",  # the statement spans are checked below
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        cluster.start()
        yield cluster, receiver


def one(spans: list[Span], **match: object) -> Span:
    """The single span with these fields (``attr_<name>`` matches an attribute)."""
    found = [
        span
        for span in spans
        if all(
            span.attributes.get(key[5:]) == value
            if key.startswith("attr_")
            else getattr(span, key) == value
            for key, value in match.items()
        )
    ]
    assert len(found) == 1, f"expected one span {match}, got {len(found)}:\n{render_tree(spans)}"
    return found[0]


def ancestors(span: Span, spans: list[Span]) -> list[Span]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def consumer(spans: list[Span], actor: str) -> Span:
    """The CONSUMER span of ``actor``'s step."""
    return one(spans, kind="CONSUMER", **{"attr_messaging.dramatiq.actor": actor})


def test_one_trace_covers_an_order_from_the_post_to_its_confirmation(traced) -> None:
    cluster, receiver = traced
    # When a customer places an order
    status, order, headers = cluster.request(
        "POST",
        "orders",
        "/orders",
        {"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}]},
        token=cluster.token("traced"),
    )
    assert status == 201
    trace_id = headers["X-Trace-Id"]
    cluster.wait_for_status(order["id"], "confirmed")

    # Then one trace holds every hop, each with the right kind and parent
    def complete() -> list[Span] | None:
        spans = receiver.trace(trace_id)
        kinds = {(s.service, s.kind) for s in spans}
        wanted = {
            ("orders-api", "SERVER"),
            ("orders-relay", "PRODUCER"),
            ("invoices-worker", "CONSUMER"),
            ("invoices-worker", "CLIENT"),
            ("invoices-relay", "PRODUCER"),
            ("orders-worker", "CONSUMER"),
            ("orders-worker", "CLIENT"),
            ("orders-api", "CLIENT"),
        }
        return spans if wanted <= kinds else None

    spans = wait_until(complete, 30, "every hop's spans to arrive")
    post = one(spans, service="orders-api", kind="SERVER")
    assert post.name.startswith("POST /orders")
    published = one(spans, service="orders-relay", kind="PRODUCER")
    issue = consumer(spans, "issue_invoice")
    answered = one(spans, service="invoices-relay", kind="PRODUCER")
    confirm = consumer(spans, "confirm_order")
    assert published.parent_id == post.span_id
    assert published.name == "publish invoices"
    assert issue.parent_id == published.span_id
    assert issue.service == "invoices-worker"
    assert issue.attributes["orderflow.order_id"] == order["id"]
    assert answered.parent_id == issue.span_id
    assert confirm.parent_id == answered.span_id
    assert confirm.service == "orders-worker"
    # SQL in both databases, inside the steps that ran it
    invoices_sql = [s for s in spans if s.service == "invoices-worker" and s.kind == "CLIENT"]
    orders_sql = [s for s in spans if s.service == "orders-worker" and s.kind == "CLIENT"]
    assert invoices_sql and orders_sql  # ORDERFLOW_TRACE_SQL=true
    assert all(s.attributes.get("db.system") == "postgresql" for s in invoices_sql + orders_sql)
    assert all(issue in ancestors(s, spans) for s in invoices_sql)
    assert all(confirm in ancestors(s, spans) for s in orders_sql)
    assert any(
        post in ancestors(s, spans)
        for s in spans
        if s.service == "orders-api" and s.kind == "CLIENT"
    )
    # The timeline names the trace, and the worker logs carry its id
    steps = cluster.request("GET", "orders", f"/orders/{order['id']}/timeline")[1]["items"]
    assert {step["trace_id"] for step in steps} == {trace_id}
    assert f"trace_id={trace_id}" in cluster.log("invoices-worker")
    if os.environ.get("ORDERFLOW_PRINT_TRACE"):
        print(render_tree(spans))


def test_a_compensation_joins_the_trace_of_the_cancel_request(traced) -> None:
    cluster, receiver = traced
    # Given a confirmed order
    _, order = cluster.place_order("traced-cancel")
    cluster.wait_for_status(order["id"], "confirmed")
    # When its customer cancels it
    status, _, headers = cluster.request(
        "POST", "orders", f"/orders/{order['id']}/cancel", token=cluster.token("traced-cancel")
    )
    assert status == 200
    trace_id = headers["X-Trace-Id"]

    # Then void_invoice runs in the trace of the cancel request, below its POST span
    def voided() -> list[Span] | None:
        # Processes export in batches: wait for the void and every span above it.
        spans = receiver.trace(trace_id)
        voids = [
            s
            for s in spans
            if s.kind == "CONSUMER"
            and s.attributes.get("messaging.dramatiq.actor") == "void_invoice"
        ]
        servers = [s for s in spans if s.kind == "SERVER" and s.service == "orders-api"]
        linked = voids and servers and servers[0] in ancestors(voids[0], spans)
        return spans if linked else None

    spans = wait_until(voided, 30, "void_invoice's span below the cancel request's span")
    cancel = one(spans, service="orders-api", kind="SERVER")
    void = consumer(spans, "void_invoice")
    assert cancel in ancestors(void, spans)
    assert void.service == "invoices-worker"
