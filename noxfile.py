#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2024.10.9"]
# ///
"""nox sessions for contributors who reach for nox: each runs the Makefile target of the same
name, which builds the environment it needs itself (.venv, .venv-lowest, .venv-latest): the
Makefile is the one place that says how timecal is installed and tested (.ci/run runs it).

    nox -l              the sessions
    nox -s lint         make lint: ruff (lint + format check) and mypy
    nox -s tests        make test-fast: the suite without the SLURM/HTCondor clusters
    nox -s lowest       make test-lowest: every dependency at its floor
    nox -s latest       make test-latest: every dependency at its newest release
    nox -s docs         make docs: the manual, built strictly
"""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"


def _make(session: nox.Session, target: str) -> None:
    session.run("make", target, *session.posargs, external=True)


@nox.session(venv_backend="none", default=True)
def lint(session: nox.Session) -> None:
    """ruff and mypy, as CI runs them."""
    _make(session, "lint")


@nox.session(venv_backend="none", default=True)
def tests(session: nox.Session) -> None:
    """The suite without the tests that need the SLURM cluster or the HTCondor pool."""
    _make(session, "test-fast")


@nox.session(venv_backend="none", default=False)
def lowest(session: nox.Session) -> None:
    """The pyprojects' floors, tried."""
    _make(session, "test-lowest")


@nox.session(venv_backend="none", default=False)
def latest(session: nox.Session) -> None:
    """The newest release of every dependency, tried."""
    _make(session, "test-latest")


@nox.session(venv_backend="none", default=False)
def docs(session: nox.Session) -> None:
    """The manual (Sphinx, every warning an error) into docs/_build/html."""
    _make(session, "docs")


if __name__ == "__main__":
    nox.main()
