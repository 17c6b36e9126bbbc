"""The operator console's files: ``GET /console/`` and the files beside it.

The console is plain HTML, CSS and JavaScript modules shipped as package data in
``gateway/console/`` (no build step, nothing fetched from elsewhere). Only the
files listed in :data:`FILES` are served, each with its own content type; any
other name is 404, so no path can reach outside the folder.

Every answer, the 404 included, carries a strict Content-Security-Policy (scripts
and styles from this origin only, no inline script, no ``eval``, requests to this
origin only, no framing), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. The page signs in with a Bearer token kept in
``sessionStorage`` and calls the gateway's API with it; the files themselves are
public, like ``/openapi.json``.
"""

from __future__ import annotations

import json
from importlib import resources

import falcon

PREFIX = "/console"
FILES = {  # name -> content type
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "main.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "health.js": "text/javascript; charset=utf-8",
    "config.json": "application/json",  # made from the settings, not a file
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_files(trace_url_template: str | None = None) -> dict[str, bytes]:
    """Every console file's bytes, read once from the package, and ``config.json``: what
    the page must know of the settings (the link to a trace, ``{trace_id}`` in it)."""
    folder = resources.files("gateway") / "console"
    files = {name: (folder / name).read_bytes() for name in FILES if name != "config.json"}
    files["config.json"] = json.dumps({"trace_url_template": trace_url_template}).encode()
    return files


class ConsoleFiles:
    """``GET /console/{name}``, and ``GET /console`` for ``index.html`` (the app strips a
    trailing slash, so ``/console/`` arrives here too), with the security headers. The
    page names its files by absolute path, so either address works."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        name = name or "index.html"
        if name not in self.files:
            raise falcon.HTTPNotFound(title="Not found", description=f"no console file {name!r}")
        resp.content_type = FILES[name]
        resp.data = self.files[name]


class SecurityHeaders:
    """Falcon middleware: the security headers on every answer under :data:`PREFIX`,
    whoever wrote it (a file, a 404 from the router, an error handler)."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req.path == PREFIX or req.path.startswith(f"{PREFIX}/"):
            resp.set_headers(SECURITY_HEADERS)
