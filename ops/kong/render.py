"""Fill in the decK environment templates of Kong's declarative file.

    python3 ops/kong/render.py ops/kong/kong.yaml > /run/orderflow-kong/kong.yaml
    python3 ops/kong/render.py ops/kong/kong.yaml --output /var/lib/orderflow/kong.yaml

``ops/kong/kong.yaml`` holds ``${{ env "DECK_..." }}`` templates where the jwt credentials'
keys go, and Kong cannot read them (docs/kong.md, "Running Kong"). Each template becomes
its variable's value as a double-quoted YAML scalar, so quotes, backslashes and the
newlines of a PEM key stay one valid value. An unset or empty variable stops the render,
naming it, before anything is written. Standard library only: it runs in any Python 3,
the orderflow image's included (the compose stack's ``kong-render`` service).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping

TEMPLATE = re.compile(r'\$\{\{ env "(DECK_[A-Z0-9_]+)" \}\}')
# What JSON leaves raw but YAML would not load back as is: DEL and the C1 controls
# (forbidden), NEL and the Unicode line and paragraph separators (YAML line breaks, folded
# inside quotes), surrogates and the two non-characters.
NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


class MissingVariable(LookupError):
    """A template names a variable that is unset or empty."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not set")
        self.name = name


def yaml_scalar(value: str) -> str:
    """``value`` as a double-quoted YAML scalar that loads back to exactly ``value``.

    A JSON string is a YAML double-quoted scalar; characters beyond ASCII stay as they
    are (a ``\\uXXXX`` pair for an emoji would load as two broken surrogates), and the
    few that YAML does not allow raw are escaped.
    """
    quoted = json.dumps(value, ensure_ascii=False)
    return NOT_YAML_PRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def render(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with every template replaced by its variable's value (see
    :func:`yaml_scalar`); raises :class:`MissingVariable` for the first one unset or empty."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not environ.get(name):
            raise MissingVariable(name)
        return yaml_scalar(environ[name])

    return TEMPLATE.sub(value, text)


def main(argv: list[str] | None = None) -> int:
    """Render SOURCE to standard output or to ``--output``; 1 when a variable is missing."""
    parser = argparse.ArgumentParser(prog="render.py", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the declarative file with templates (ops/kong/kong.yaml)")
    parser.add_argument("-o", "--output", help="write here instead of standard output")
    args = parser.parse_args(argv)
    with open(args.source, encoding="utf-8") as source:
        text = source.read()
    try:
        rendered = render(text, os.environ)
    except MissingVariable as exc:
        sys.stderr.write(f"render: {exc}\n")
        return 1
    if args.output is None:
        sys.stdout.write(rendered)
    else:  # created with the caller's umask: the reader (Kong) may run as another user
        with open(args.output, "w", encoding="utf-8") as output:
            output.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
