"""The Kong edge configuration (ops/kong/kong.yaml), checked without a Kong server.

decK validates the file's shape and references; these tests add what decK 1.4.0 does
not check: plugin ``config`` keys and enum values against Kong 3.9's schemas
(plugin_schemas.json), the security settings, and a contract with the real Falcon
apps: every path Kong forwards reaches a responder, with the headers Kong adds.

Without ``deck`` or PyYAML the tests that need them skip and say why; under
``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon
import falcon.testing
import pytest

from tests.observability.support import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
KONG_YAML = ROOT / "ops" / "kong" / "kong.yaml"
KONG_DOC = ROOT / "docs" / "kong.md"
SCHEMAS = Path(__file__).with_name("plugin_schemas.json")

SERVICE_NAMES = ("orders", "invoices", "gateway")
ENV_TEMPLATE = re.compile(r'\$\{\{ env "(DECK_[A-Z0-9_]+)" \}\}')
KEY_MATERIAL = ("secret", "rsa_public_key")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
AN_ID = "5bc853e9-0f68-4e5c-9fcf-3649c3179e94"
TEST_SECRET = "kong-contract-tests-only-secret-0123456789"


# --- helpers ---------------------------------------------------------------------------


def load_yaml(text: str) -> Any:
    """Parse YAML with PyYAML's safe loader (skips, or fails under CI, without PyYAML)."""
    try:
        import yaml
    except ImportError:
        skip_or_fail("PyYAML is not installed: add pyyaml to the test extra")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class Scope:
    """Where a plugin applies: globally, or to one service, route or consumer."""

    kind: str  # "global", "service", "route" or "consumer"
    name: str = ""


@dataclass(frozen=True)
class Route:
    """A Kong route together with the name of the service it forwards to."""

    service: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def paths(self) -> list[str]:
        return self.spec.get("paths", [])

    @property
    def methods(self) -> set[str]:
        return set(self.spec.get("methods", HTTP_METHODS))


def reference(value: Any) -> str | None:
    """The entity name a foreign key names: Kong takes ``name`` or ``{name: ...}``."""
    if isinstance(value, dict):
        return value.get("name") or value.get("id") or value.get("username")
    return value


def routes_of(config: dict[str, Any]) -> list[Route]:
    """Every route, nested under its service or at the top level with a service reference."""
    nested = [
        Route(service["name"], route)
        for service in config.get("services", [])
        for route in service.get("routes", [])
    ]
    top = [
        Route(reference(route.get("service")) or "", route) for route in config.get("routes", [])
    ]
    return nested + top


def plugins_of(config: dict[str, Any]) -> list[tuple[Scope, dict[str, Any]]]:
    """Every plugin with the scope it applies to, wherever the file declares it."""
    found: list[tuple[Scope, dict[str, Any]]] = []
    for service in config.get("services", []):
        found += [(Scope("service", service["name"]), p) for p in service.get("plugins", [])]
        for route in service.get("routes", []):
            found += [(Scope("route", route["name"]), p) for p in route.get("plugins", [])]
    for route in config.get("routes", []):
        found += [(Scope("route", route["name"]), p) for p in route.get("plugins", [])]
    for consumer in config.get("consumers", []):
        found += [(Scope("consumer", consumer["username"]), p) for p in consumer.get("plugins", [])]
    for plugin in config.get("plugins", []):
        found.append((top_level_scope(plugin), plugin))
    return found


def top_level_scope(plugin: dict[str, Any]) -> Scope:
    """The scope of a plugin declared at the top level (its service/route/consumer key)."""
    for kind in ("route", "service", "consumer"):
        if plugin.get(kind) is not None:
            return Scope(kind, reference(plugin[kind]) or "")
    return Scope("global")


def jwt_credentials(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every jwt credential with its consumer's username."""
    return [
        (consumer["username"], credential)
        for consumer in config.get("consumers", [])
        for credential in consumer.get("jwt_secrets", [])
    ]


def type_error(value: Any, spec: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit the scalar type of ``spec``, or None if it does."""
    expected = spec["type"]
    checks = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "set": lambda v: isinstance(v, list),
        "map": lambda v: isinstance(v, dict),
        "record": lambda v: isinstance(v, dict),
    }
    return None if checks[expected](value) else f"is {value!r}, expected a {expected}"


def field_problems(path: str, value: Any, spec: dict[str, Any]) -> list[str]:
    """Problems of one field's value against its spec, descending into nested fields."""
    if (wrong := type_error(value, spec)) is not None:
        return [f"{path} {wrong}"]
    problems: list[str] = []
    if "one_of" in spec and value not in spec["one_of"]:
        problems.append(f"{path} is {value!r}, not one of {spec['one_of']}")
    if "between" in spec and not spec["between"][0] <= value <= spec["between"][1]:
        problems.append(f"{path} is {value!r}, outside {spec['between']}")
    if spec["type"] in ("array", "set"):
        for index, element in enumerate(value):
            problems += field_problems(f"{path}[{index}]", element, spec["elements"])
    elif spec["type"] == "map":
        for key, element in value.items():
            problems += field_problems(f"{path}.{key}", element, spec["values"])
    elif spec["type"] == "record":
        problems += record_problems(path, value, spec["fields"])
    return problems


def record_problems(
    path: str, record: dict[str, Any], fields: dict[str, Any], shorthands: tuple[str, ...] = ()
) -> list[str]:
    """Unknown keys and bad values of a record (a plugin's ``config`` or a nested record)."""
    problems = []
    for key, value in record.items():
        if key in shorthands:
            continue
        if key not in fields:
            problems.append(f"{path}.{key} is not a Kong 3.9 field (known: {sorted(fields)})")
        elif value is not None:
            problems += field_problems(f"{path}.{key}", value, fields[key])
    return problems


def deprecated_fields(
    path: str, record: dict[str, Any], fields: dict[str, Any], shorthands: tuple[str, ...] = ()
) -> Iterator[str]:
    """The deprecated fields and shorthand aliases a record uses, recursively."""
    for key, value in record.items():
        spec = fields.get(key, {})
        if key in shorthands or "deprecated" in spec:
            yield f"{path}.{key}"
        elif spec.get("type") == "record" and isinstance(value, dict):
            yield from deprecated_fields(f"{path}.{key}", value, spec["fields"])


def upstream_path(route: Route, request_path: str) -> str | None:
    """The path the upstream receives for ``request_path``, or None if the route does
    not match it (Kong prefix paths; with strip_path the matched prefix is removed)."""
    for prefix in sorted(route.paths, key=len, reverse=True):
        if request_path.startswith(prefix):
            if not route.spec.get("strip_path", True):
                return request_path
            rest = request_path[len(prefix) :]
            return rest if rest.startswith("/") else "/" + rest
    return None


def upstream_host(config: dict[str, Any], service_name: str) -> str:
    """The host name in a Kong service's upstream URL (``http://orders:3333`` -> orders)."""
    service = next(s for s in config["services"] if s["name"] == service_name)
    return urlsplit(service["url"]).hostname or ""


def doc_render_command() -> list[str]:
    """The render command shown in docs/kong.md, "Running Kong" (``python3
    ops/kong/render.py ...``), as an argument list without its output redirection."""
    section = KONG_DOC.read_text(encoding="utf-8").split("## Running Kong", 1)[-1]
    match = re.search(r"^python3 ops/kong/render\.py [^\n]*$", section, re.M)
    assert match, "docs/kong.md, Running Kong, shows no `python3 ops/kong/render.py` command"
    words = shlex.split(match.group(0))
    return words[: words.index(">")] if ">" in words else words


def run_render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the documented render command from the repository root, with ``env`` as its
    only DECK_ variables and this interpreter as ``python3``; its output is captured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DECK_")}
    python, *arguments = doc_render_command()
    assert python == "python3", f"the documented command runs {python}, not python3"
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """ops/kong/kong.yaml, parsed."""
    return load_yaml(KONG_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    """tests/kong/plugin_schemas.json: Kong 3.9's plugin config schemas, transcribed."""
    return json.loads(SCHEMAS.read_text(encoding="utf-8"))


# --- decK ------------------------------------------------------------------------------


def test_deck_validate_accepts_the_file() -> None:
    """decK (Debian's 1.4.0: ``deck validate -s FILE``) parses the file and resolves
    its references offline."""
    deck = shutil.which("deck")
    if deck is None:
        skip_or_fail("deck is not installed (Debian package `deck`)")
    result = subprocess.run(
        [deck, "validate", "-s", str(KONG_YAML)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"deck validate failed:\n{result.stdout}{result.stderr}"


# --- plugins against Kong's schemas ----------------------------------------------------


def test_the_schemas_were_transcribed_for_the_kong_version_the_file_targets(
    schemas: dict[str, Any],
) -> None:
    """plugin_schemas.json records its Kong version and each plugin's schema.lua."""
    assert schemas["kong_version"] == "3.9"
    assert "Kong Gateway 3.9" in KONG_YAML.read_text(encoding="utf-8")
    for name, plugin in schemas["plugins"].items():
        assert plugin["source"].startswith(f"kong/plugins/{name}/schema.lua"), name


def test_every_plugin_is_a_known_kong_plugin(
    config: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """Each plugin name is one whose schema was transcribed."""
    unknown = {plugin["name"] for _, plugin in plugins_of(config)} - set(schemas["plugins"])
    assert not unknown, f"plugins without a transcribed schema: {sorted(unknown)}"


def test_every_plugin_config_key_and_enum_value_exists_in_kong_3_9(
    config: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """Every ``config`` key (recursively) is a Kong 3.9 field and every value fits its
    type, enum and range."""
    problems = []
    for scope, plugin in plugins_of(config):
        schema = schemas["plugins"].get(plugin["name"])
        if schema is not None:
            problems += record_problems(
                f"{plugin['name']}@{scope.kind}:{scope.name}.config",
                plugin.get("config") or {},
                schema["fields"],
                tuple(schema.get("shorthand_fields", ())),
            )
    assert not problems, "\n".join(problems)


def test_no_plugin_uses_a_deprecated_field(config: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Deprecated fields and shorthand aliases (e.g. opentelemetry ``endpoint``) are not used."""
    used = [
        field
        for _, plugin in plugins_of(config)
        if (schema := schemas["plugins"].get(plugin["name"]))
        for field in deprecated_fields(
            f"{plugin['name']}.config",
            plugin.get("config") or {},
            schema["fields"],
            tuple(schema.get("shorthand_fields", ())),
        )
    ]
    assert not used, f"deprecated in Kong 3.9: {used}"


def test_jwt_credentials_use_only_known_fields_and_algorithms(
    config: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """Each jwt credential's fields and algorithm exist in Kong's jwt_secrets schema."""
    fields = schemas["credentials"]["jwt_secrets"]["fields"]
    problems = [
        problem
        for username, credential in jwt_credentials(config)
        for problem in record_problems(f"{username}.jwt_secrets", credential, fields)
    ]
    assert not problems, "\n".join(problems)


# --- names and references --------------------------------------------------------------


def test_service_route_and_consumer_names_are_unique(config: dict[str, Any]) -> None:
    """No two services, routes or consumers share a name (Kong keys them by name)."""
    names = {
        "services": [s["name"] for s in config.get("services", [])],
        "routes": [r.name for r in routes_of(config)],
        "consumers": [c["username"] for c in config.get("consumers", [])],
        "jwt keys": [c["key"] for _, c in jwt_credentials(config)],
    }
    duplicates = {
        kind: [n for n, count in Counter(values).items() if count > 1]
        for kind, values in names.items()
    }
    assert not any(duplicates.values()), duplicates


def test_each_plugin_appears_once_per_scope(config: dict[str, Any]) -> None:
    """A plugin is configured at most once per scope (Kong would reject the second)."""
    counts = Counter((scope, plugin["name"]) for scope, plugin in plugins_of(config))
    assert not [key for key, count in counts.items() if count > 1]


def test_every_reference_resolves(config: dict[str, Any]) -> None:
    """Routes name existing services; plugins name existing services, routes, consumers."""
    known = {
        "service": {s["name"] for s in config.get("services", [])},
        "route": {r.name for r in routes_of(config)},
        "consumer": {c["username"] for c in config.get("consumers", [])},
    }
    dangling = [
        f"route {r.name} -> {r.service!r}"
        for r in routes_of(config)
        if r.service not in known["service"]
    ]
    dangling += [
        f"{plugin['name']} -> {scope.kind} {scope.name!r}"
        for scope, plugin in plugins_of(config)
        if scope.kind != "global" and scope.name not in known[scope.kind]
    ]
    assert not dangling, dangling


def test_every_route_path_starts_with_a_slash_and_names_real_methods(
    config: dict[str, Any],
) -> None:
    """Route paths are absolute prefixes; methods are HTTP methods."""
    for route in routes_of(config):
        assert route.paths, f"route {route.name} has no paths"
        assert all(p.startswith("/") for p in route.paths), (route.name, route.paths)
        assert route.methods <= HTTP_METHODS, (route.name, route.methods - HTTP_METHODS)


# --- security settings -----------------------------------------------------------------


def test_jwt_never_reads_tokens_from_query_strings_or_cookies(config: dict[str, Any]) -> None:
    """Tokens come from the Authorization header only."""
    jwt = [plugin["config"] for _, plugin in plugins_of(config) if plugin["name"] == "jwt"]
    assert jwt, "no jwt plugin"
    for conf in jwt:
        assert conf["uri_param_names"] == []
        assert conf["cookie_names"] == []
        assert conf["header_names"] == ["authorization"]
        assert conf["key_claim_name"] == "iss"
        assert "exp" in conf["claims_to_verify"]


def test_no_literal_secrets_every_jwt_key_is_an_environment_template(
    config: dict[str, Any],
) -> None:
    """Every ``secret`` and ``rsa_public_key`` is a ``${{ env "DECK_..." }}`` template.

    Not a ``{vault://...}`` reference: Kong resolves those only in fields marked
    ``referenceable``, which no jwt credential field is, so Kong would take the
    reference itself as the HMAC key.
    """
    assert jwt_credentials(config), "no jwt credentials"
    for username, credential in jwt_credentials(config):
        for field in KEY_MATERIAL:
            if field in credential:
                value = str(credential[field])
                assert not value.startswith("{vault://"), (username, field, value)
                assert ENV_TEMPLATE.fullmatch(value), f"{username}.{field} is a literal: {value!r}"


def test_every_issuer_has_a_consumer_whose_credential_key_is_that_issuer(
    config: dict[str, Any],
) -> None:
    """Consumers are named after their issuer; the services' default issuer has one."""
    from ops.settings import Settings

    keys = {credential["key"]: username for username, credential in jwt_credentials(config)}
    assert all(username == key for key, username in keys.items()), keys
    default_issuer = getattr(Settings(), "jwt_issuer", "orderflow")
    assert default_issuer in keys


def test_the_documented_render_step_fills_in_the_secrets_as_valid_yaml() -> None:
    """docs/kong.md's render step replaces every template, even a multi-line PEM key."""
    pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n"
    env = {
        "DECK_ORDERFLOW_JWT_SECRET": TEST_SECRET,
        "DECK_ORDERFLOW_JWT_PUBLIC_KEY": pem,
        "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET": "unused-" + TEST_SECRET,
    }
    result = run_render(env)
    assert result.returncode == 0, result.stderr
    assert not ENV_TEMPLATE.search(result.stdout), "a template was left in place"
    rendered = {c["key"]: c for _, c in jwt_credentials(load_yaml(result.stdout))}
    assert rendered["orderflow"]["secret"] == TEST_SECRET
    assert rendered["orderflow-rs256"]["rsa_public_key"] == pem


def test_the_documented_render_step_refuses_a_missing_variable() -> None:
    """Without a variable the render step exits non-zero and names it."""
    result = run_render({"DECK_ORDERFLOW_JWT_SECRET": TEST_SECRET})
    assert result.returncode != 0
    assert "DECK_ORDERFLOW_JWT_PUBLIC_KEY" in result.stderr


def test_tokens_the_services_mint_pass_the_jwt_plugin_checks(config: dict[str, Any]) -> None:
    """A token from ``ops.shared.web.auth.mint`` names a consumer's key in ``iss``, uses that
    credential's algorithm, and fits ``maximum_expiration`` at the longest TTL orderflow
    mints plus the services' clock-skew leeway."""
    jwt_lib = pytest.importorskip("jwt")
    try:
        from ops.demo.identity import TOKEN_TTL
        from ops.settings import Settings
        from ops.shared.web.auth import LEEWAY_SECONDS, TokenKeys, mint
    except ImportError as exc:
        skip_or_fail(f"the token API is not there yet: {exc}")
    keys = TokenKeys.hs256(TEST_SECRET.encode(), Settings().jwt_issuer, Settings().jwt_audience)
    token = mint(keys, "c1", "customer", TOKEN_TTL)
    header, claims = (
        jwt_lib.get_unverified_header(token),
        jwt_lib.decode(token, options={"verify_signature": False}),
    )
    credentials = {c["key"]: c for _, c in jwt_credentials(config)}
    assert claims["iss"] in credentials
    assert header["alg"] == credentials[claims["iss"]]["algorithm"]
    for conf in [p["config"] for _, p in plugins_of(config) if p["name"] == "jwt"]:
        assert claims["exp"] - claims["iat"] + LEEWAY_SECONDS <= conf["maximum_expiration"]


def test_only_the_consoles_page_and_files_pass_kong_without_a_token(
    config: dict[str, Any],
) -> None:
    """A jwt plugin with ``anonymous`` lets a request without a token through: only the
    console's route has one, and the consumer it names has no credential."""
    anonymous = [
        (scope, p["config"]["anonymous"])
        for scope, p in plugins_of(config)
        if p["name"] == "jwt" and p["config"].get("anonymous")
    ]
    assert [(scope.kind, scope.name, who) for scope, who in anonymous] == [
        ("route", "gateway-console", "console-visitor")
    ]
    (visitor,) = [c for c in config["consumers"] if c["username"] == "console-visitor"]
    assert not visitor.get("jwt_secrets")
    (route,) = [r for r in routes_of(config) if r.name == "gateway-console"]
    assert route.paths == ["/console"] and route.methods == {"GET", "OPTIONS"}


# --- contract with the Falcon apps -----------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A request a client sends to Kong, and what it sends with it."""

    path: str
    method: str = "GET"
    body: dict[str, Any] | None = None


# Per Kong route path: requests that must reach a responder of the upstream app.
EXAMPLES: dict[str, list[Example]] = {
    "/orders": [
        Example("/orders"),
        Example(f"/orders/{AN_ID}"),
        Example(f"/orders/{AN_ID}/cancel", "POST"),
        Example(f"/orders/{AN_ID}/timeline"),
    ],
    "/invoices": [
        Example("/invoices"),
        Example(f"/invoices/{AN_ID}"),
        Example(f"/invoices/{AN_ID}/payments", "POST", {"amount": "1.00"}),
    ],
    "/accounts": [Example("/accounts/c1")],
    "/me": [Example("/me/orders"), Example(f"/me/orders/{AN_ID}")],
    "/graphql": [Example("/graphql", "POST", {"query": "{ __typename }"})],
    "/console": [Example("/console"), Example("/console/main.js")],
    "/ops": [Example("/ops/orders"), Example(f"/ops/orders/{AN_ID}")],
    "/bff": [
        Example("/bff/me/orders"),
        Example(f"/bff/me/orders/{AN_ID}"),
        Example("/bff/graphql", "POST", {"query": "{ __typename }"}),
    ],
}


def kong_headers(route: Route, request_path: str, token: str) -> dict[str, str]:
    """The headers Kong 3.x sends upstream after the jwt, correlation-id and
    opentelemetry plugins ran (X-Forwarded-Prefix only for stripped routes)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Forwarded-For": "203.0.113.7",
        "X-Real-IP": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example.com",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Path": request_path,
        "Via": "1.1 kong/3.9.1",
        "X-Kong-Request-Id": uuid.uuid4().hex,
        "X-Correlation-ID": str(uuid.uuid4()),
        "X-Consumer-ID": str(uuid.uuid4()),
        "X-Consumer-Username": "orderflow",
        "X-Credential-Identifier": "orderflow",
        "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    if route.spec.get("strip_path"):
        headers["X-Forwarded-Prefix"] = next(p for p in route.paths if request_path.startswith(p))
    return headers


def implemented_methods(app: falcon.App, path: str) -> set[str]:
    """The methods the app's resource at ``path`` implements (``on_*`` responders)."""
    found = app._router.find(path)
    if found is None:
        return set()
    _, method_map, _, _ = found
    return {
        method
        for method, responder in method_map.items()
        if getattr(responder, "__name__", "").startswith("on_") and method != "OPTIONS"
    }


def unused_port() -> int:
    """A local TCP port nothing listens on (so a connection to it is refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Settings on fresh SQLite files, both databases migrated and bound."""
    from ops import bootstrap
    from ops.settings import Settings

    nowhere = f"http://127.0.0.1:{unused_port()}"  # the gateway's upstreams: refused, fast
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("kong-contract"),
        jwt_secret=TEST_SECRET,
        orders_url=nowhere,
        invoices_url=nowhere,
    )
    bootstrap.migrate(settings)
    databases = bootstrap.init_databases(settings)
    yield settings
    for database in databases.values():
        database.close()


def build_app(settings: Any, service: str) -> falcon.App:
    """The app ``service`` through ``ops.bootstrap``, or a skip saying why it cannot be built."""
    from ops import bootstrap

    try:
        return bootstrap.build_app(settings, service)
    except (ImportError, KeyError, AttributeError, TypeError) as exc:
        pytest.skip(f"the {service} app cannot be built yet: {type(exc).__name__}: {exc}")


def routes_to(config: dict[str, Any], service: str) -> list[Route]:
    """The Kong routes whose service's upstream host is ``service``."""
    return [r for r in routes_of(config) if upstream_host(config, r.service) == service]


def test_every_kong_route_path_has_examples(config: dict[str, Any]) -> None:
    """Each route path is exercised by the contract tests below, and each example
    matches the route it is listed under."""
    for route in routes_of(config):
        for path in route.paths:
            assert EXAMPLES.get(path), f"add examples for Kong path {path} to EXAMPLES"
            for example in EXAMPLES[path]:
                assert upstream_path(route, example.path) is not None, (path, example.path)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_path_kong_forwards_reaches_a_responder_of_the_app(
    service: str, config: dict[str, Any], app_settings: Any
) -> None:
    """For each route to ``service``, the upstream path of every example (after
    strip_path) is found by the app's router and the example's method is served."""
    routes = routes_to(config, service)
    assert routes, f"no Kong route reaches {service}"
    app = build_app(app_settings, service)
    missing = []
    for route in routes:
        for example in (e for p in route.paths for e in EXAMPLES[p]):
            path = upstream_path(route, example.path)
            if path is None or example.method not in implemented_methods(app, path):
                missing.append(f"{example.method} {example.path} -> {path}")
    assert not missing, f"{service} serves no responder for: {missing}"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_route_methods_are_exactly_what_the_app_serves_plus_preflight(
    service: str, config: dict[str, Any], app_settings: Any
) -> None:
    """Kong lets through no method the paths do not serve, and blocks none they serve."""
    app = build_app(app_settings, service)
    for route in routes_to(config, service):
        served = set().union(
            *(
                implemented_methods(app, upstream_path(route, example.path) or "")
                for path in route.paths
                for example in EXAMPLES[path]
            )
        )
        assert route.methods == served | {"OPTIONS"}, (route.name, sorted(served))


def is_route_not_found(result: falcon.testing.Result) -> bool:
    """True for Falcon's own 404 (no route), as opposed to the app's 'no such resource'."""
    if result.status_code != 404:
        return False
    try:
        document = result.json
    except ValueError:
        return True
    return not isinstance(document, dict) or document.get("type") == "about:blank"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_app_answers_requests_carrying_kongs_upstream_headers(
    service: str, config: dict[str, Any], app_settings: Any
) -> None:
    """One real request per example, as Kong forwards it: no 400, 401, 405, no
    route-not-found 404 and no 5xx (the gateway may answer 502/503/504, as the services
    behind it are not running in this test)."""
    try:
        from ops import bootstrap
        from ops.shared.web.auth import mint
    except ImportError as exc:
        skip_or_fail(f"the token API is not there yet: {exc}")
    app = build_app(app_settings, service)
    client = falcon.testing.TestClient(app)
    token = mint(bootstrap.token_keys(app_settings), "c1", "customer", 300)
    allowed_5xx = {502, 503, 504} if service == "gateway" else set()
    failures = []
    for route in routes_to(config, service):
        for example in (e for p in route.paths for e in EXAMPLES[p]):
            result = client.simulate_request(
                example.method,
                upstream_path(route, example.path) or "",
                headers=kong_headers(route, example.path, token),
                json=example.body,
                host=upstream_host(config, route.service),
                remote_addr="172.18.0.2",
            )
            status = result.status_code
            if (
                status in (400, 401, 405)
                or is_route_not_found(result)
                or (status >= 500 and status not in allowed_5xx)
            ):
                failures.append(f"{example.method} {example.path}: {status} {result.text[:200]}")
    assert not failures, "\n".join(failures)
