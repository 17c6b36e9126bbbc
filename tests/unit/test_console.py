"""The console's files as the gateway serves them: public, each with its type, and every
answer with the security headers (a strict Content-Security-Policy above all)."""

from __future__ import annotations

import re

import falcon.testing
import pytest

from gateway import console
from gateway.app import create_app
from ops.shared.web.auth import TokenKeys

from .conftest import TEST_SECRET

PAGES = ["/console", "/console/", "/console/index.html"]


@pytest.fixture
def gateway() -> falcon.testing.TestClient:
    """The gateway app; no service is called for the console's files."""
    keys = TokenKeys.hs256(TEST_SECRET.encode(), "orderflow", "orderflow")
    app = create_app(
        orders_url="http://127.0.0.1:9",
        invoices_url="http://127.0.0.1:9",
        audit_url="http://127.0.0.1:9",
        timeout=1.0,
        token_keys=keys,
    )
    return falcon.testing.TestClient(app)


ASSETS = [f"/console/{name}" for name in console.FILES]


@pytest.mark.parametrize("path", [*PAGES, *ASSETS, "/console/nope.js", "/console/..%2Fapp.py"])
def test_every_console_answer_carries_the_security_headers_without_a_token(
    gateway: falcon.testing.TestClient, path: str
) -> None:
    result = gateway.simulate_get(path)
    csp = result.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["referrer-policy"] == "no-referrer"
    known = path in PAGES or path in ASSETS
    assert result.status_code == (200 if known else 404), result.text


@pytest.mark.parametrize("path", PAGES)
def test_the_page_is_html_naming_its_files_by_absolute_path(
    gateway: falcon.testing.TestClient, path: str
) -> None:
    result = gateway.simulate_get(path)
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    named = {
        link
        for link in re.findall(r'(?:href|src)="([^"]+)"', result.text)
        if not link.startswith(("#", "data:"))  # in-page links, the empty icon
    }
    assert named == {"/console/console.css", "/console/main.js"}


def test_the_scripts_are_modules_that_import_only_console_files_and_never_write_html() -> None:
    files = console.load_files()
    for name, data in files.items():
        if not name.endswith(".js"):
            continue
        text = data.decode()
        assert set(re.findall(r'from "([^"]+)"', text)) <= {f"/console/{n}" for n in files}
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert unsafe not in text, f"{name} uses {unsafe}"
        assert "localStorage" not in text and "document.cookie" not in text


def test_the_index_has_no_inline_script_or_style() -> None:
    page = console.load_files()["index.html"].decode()
    assert re.search(r"<script(?![^>]*\ssrc=)", page) is None
    assert "<style" not in page and " style=" not in page and "onclick" not in page


def test_the_page_learns_the_trace_link_from_config_json() -> None:
    keys = TokenKeys.hs256(TEST_SECRET.encode(), "orderflow", "orderflow")
    template = "http://localhost:16686/trace/{trace_id}"
    app = create_app(
        orders_url="http://127.0.0.1:9",
        invoices_url="http://127.0.0.1:9",
        audit_url="http://127.0.0.1:9",
        timeout=1.0,
        token_keys=keys,
        trace_url_template=template,
    )
    result = falcon.testing.TestClient(app).simulate_get("/console/config.json")
    assert result.json == {"trace_url_template": template}
    assert "script-src 'self'" in result.headers["content-security-policy"]
