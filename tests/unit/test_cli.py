"""The ``orderflow`` command line itself: what every command shares."""

from __future__ import annotations

import importlib.metadata

import pytest

from ops import cli


def test_version_prints_the_installed_release_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"orderflow {importlib.metadata.version('orderflow')}"
    )


def test_version_says_unknown_when_orderflow_was_never_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.version() == "unknown"
