"""The gateway's Falcon resources: authorise, call a composition, write the answer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import falcon
from graphql import GraphQLSchema

from gateway import compose
from gateway.clients import forwarded_headers
from gateway.compose import Upstream
from gateway.graphql import Context, execute
from gateway.outcomes import UpstreamProblem
from ops.shared.web.auth import principal_of, require_customer, require_operator
from ops.shared.web.bodies import read_json
from ops.shared.web.http import Ready
from ops.shared.web.problems import PROBLEM_JSON


def forwarded(req: falcon.Request) -> dict[str, str]:
    """The caller's headers the services must see."""
    return forwarded_headers(req.get_header)


def handle_upstream_problem(
    req: falcon.Request, resp: falcon.Response, exc: UpstreamProblem, params: dict[str, Any]
) -> None:
    """Write a service's problem (or the gateway's 503) as problem+json, unchanged."""
    resp.status = falcon.code_to_http_status(exc.status)
    resp.content_type = PROBLEM_JSON
    resp.data = json.dumps(exc.document).encode()
    for name, value in exc.headers.items():
        resp.set_header(name, value)
    if exc.status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="orderflow"')
    resp.append_header("Vary", "Accept")


class MyOrders:
    """``GET /me/orders``: the caller's orders with invoice summaries."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_customer(req)
        query = {name: req.get_param(name) for name in compose.LIST_PARAMS}
        resp.media = compose.my_orders(self.upstream, forwarded(req), query)


class MyOrder:
    """``GET /me/orders/{id}``: one order with its invoice and timeline."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_id: uuid.UUID) -> None:
        require_customer(req)
        resp.media = compose.order_detail(self.upstream, forwarded(req), str(order_id))


class OpsOrders:
    """``GET /ops/orders``: every customer's orders with invoice summaries; operators only."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(req)
        query = {name: req.get_param(name) for name in compose.OPERATOR_LIST_PARAMS}
        resp.media = compose.my_orders(self.upstream, forwarded(req), query)


class OpsOrder:
    """``GET /ops/orders/{id}``: any order with its invoice and timeline; operators only."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_id: uuid.UUID) -> None:
        require_operator(req)
        resp.media = compose.order_detail(self.upstream, forwarded(req), str(order_id))


class OpsDeadLetters:
    """``GET /ops/dead-letters?all=``: both services' dead letters; operators only."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(req)
        include = req.get_param_as_bool("all", default=False)
        resp.media = compose.dead_letters(self.upstream, forwarded(req), include)


class OpsDeadLetterReplay:
    """``POST /ops/dead-letters/{service}/{message_id}/replay``: replay one; operators only."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, service: str, message_id: str
    ) -> None:
        require_operator(req)
        resp.media = compose.replay_dead_letter(self.upstream, forwarded(req), service, message_id)


class OpsHealth:
    """``GET /ops/health``: the audit part's report and the services' readiness; operators
    only."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(req)
        resp.media = compose.health(self.upstream, forwarded(req))
        resp.cache_control = ["no-store"]


class Readiness(Ready):
    """``GET /ready``: 200 when both services answer ``/health``, else 503 naming them."""

    detail = "unavailable: {failing}"

    def __init__(self, service: str, upstream: Upstream) -> None:
        super().__init__(service, {})
        self.upstream = upstream

    def results(self) -> dict[str, str]:
        return compose.readiness(self.upstream)


class GraphQL:
    """``POST /graphql``: a JSON ``{"query", "variables", "operationName"}`` request."""

    def __init__(self, schema: GraphQLSchema, upstream: Upstream) -> None:
        self.schema = schema
        self.upstream = upstream

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = read_json(req)
        context = Context(self.upstream, forwarded(req), principal_of(req))
        status, result = execute(self.schema, data, context)
        resp.status = falcon.code_to_http_status(status)
        resp.media = result
