"""GraphQL over the compositions: the schema-first ariadne schema, its limits, execution.

Resolvers call :mod:`gateway.compose`, like the REST resources. A service's refusal
(or the orders service's failure) becomes a GraphQL error whose ``extensions``
carry ``status`` and the problem's fields; an unexpected exception becomes
``internal error`` with status 500 (logged, never shown). Introspection stays on;
queries are capped in depth and in cost (upstream calls per operation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from ariadne import MutationType, QueryType, graphql_sync, load_schema_from_path
from ariadne import make_executable_schema as make_schema
from ariadne.utils import unwrap_graphql_error
from ariadne.validation import cost_validator
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema

from gateway import compose
from gateway.compose import Upstream
from gateway.limits import depth_limit
from gateway.outcomes import UpstreamProblem
from ops.shared.values.errors import DomainError
from ops.shared.web.auth import Forbidden, Principal

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
MAX_DEPTH = 15  # the standard introspection query nests 15 levels; our own types 5
MAX_COST = 30  # upstream calls one operation may cause
COST_MAP = {
    "Query": {"myOrders": {"complexity": 2}, "order": {"complexity": 3}},
    "Mutation": {"placeOrder": {"complexity": 1}, "cancelOrder": {"complexity": 1}},
}


@dataclass(frozen=True)
class Context:
    """What a resolver needs: the services, the caller's forwarded headers, the caller."""

    upstream: Upstream
    forward: Mapping[str, str]
    principal: Principal


def _service_error(exc: UpstreamProblem | DomainError) -> GraphQLError:
    """A GraphQL error with ``extensions.status`` and the problem's other fields."""
    if isinstance(exc, DomainError):
        document = {"title": exc.title, "status": exc.status, "detail": exc.detail}
    else:
        document = dict(exc.document)
    message = str(document.get("detail") or document.get("title") or "request failed")
    extensions = {key: value for key, value in document.items() if key != "detail"}
    return GraphQLError(message, extensions=extensions)


def _guarded(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the services' problems (and the caller's) into GraphQL errors."""

    @wraps(resolver)
    def guarded(obj: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        try:
            return resolver(info.context, **arguments)
        except (UpstreamProblem, DomainError) as exc:
            raise _service_error(exc) from None

    return guarded


query = QueryType()
mutation = MutationType()


@query.field("myOrders")
@_guarded
def resolve_my_orders(
    context: Context, status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """The caller's page of orders as ``{items: [{order, invoice}], ...}``."""
    if context.principal.is_operator:
        raise Forbidden("myOrders is for customers; operators have no orders of their own")
    params = {"status": status, "limit": None if limit is None else str(limit), "cursor": cursor}
    page = compose.my_orders(context.upstream, context.forward, params)
    page["items"] = [{"order": item, "invoice": item["invoice"]} for item in page["items"]]
    return page


@query.field("order")
@_guarded
def resolve_order(context: Context, id: str) -> dict[str, Any]:
    """The order, its invoice and its timeline."""
    return compose.order_detail(context.upstream, context.forward, id)


@mutation.field("placeOrder")
@_guarded
def resolve_place_order(
    context: Context, input: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """Place the order ``input`` (names already snake_case: ``unit_price``)."""
    return compose.place_order(context.upstream, context.forward, input, idempotency_key)


@mutation.field("cancelOrder")
@_guarded
def resolve_cancel_order(
    context: Context, id: str, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Cancel the order ``id``."""
    return compose.cancel_order(context.upstream, context.forward, id, idempotency_key)


def build_schema() -> GraphQLSchema:
    """The executable schema from ``schema.graphql`` (camelCase fields read snake_case keys)."""
    return make_schema(
        load_schema_from_path(str(SCHEMA_FILE)), query, mutation, convert_names_case=True
    )


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """The error as the client sees it: an unexpected exception shows no detail at all."""
    formatted = dict(error.formatted)
    original = unwrap_graphql_error(error)
    if original is not None and not isinstance(original, GraphQLError):
        formatted["message"] = "internal error; it was logged"
        formatted["extensions"] = {"status": 500}
    return formatted


class _ErrorLog(logging.LoggerAdapter):
    """ariadne logs every error as ERROR; only unexpected exceptions deserve that."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        original = unwrap_graphql_error(error) if isinstance(error, Exception) else None
        if original is not None and not isinstance(original, GraphQLError):
            self.logger.error("graphql resolver failed: %s", msg, exc_info=original)
        else:
            self.logger.info("graphql error: %s", msg)


def _rules(context: Any, document: Any, data: dict[str, Any]) -> list[Any]:
    variables = data.get("variables")
    return [
        depth_limit(MAX_DEPTH),
        cost_validator(
            MAX_COST,
            cost_map=COST_MAP,
            variables=variables if isinstance(variables, dict) else None,
        ),
    ]


def execute(schema: GraphQLSchema, data: dict[str, Any], context: Context) -> tuple[int, dict]:
    """Run one GraphQL request; returns the HTTP status and the JSON result.

    200 once the operation ran (even with field errors, ``data`` present); 400 when
    the request was refused before running (syntax, validation, limits).
    """
    _, result = graphql_sync(
        schema,
        data,
        context_value=context,
        validation_rules=_rules,
        error_formatter=format_error,
        logger=_ErrorLog(log, {}),
        introspection=True,
        debug=False,
    )
    return (200 if "data" in result else 400), result
