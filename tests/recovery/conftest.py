"""The recovery suite: the outbox under a killed cluster, a failing provider and odd replies.

Each test runs the product's own processes (``manage.py qcluster`` and a ticker, production
settings) against the pytest test database, with a fake Postmark that can misbehave; see
harness.py. The suite needs PostgreSQL (``DATABASE_URL``) and Redis (``REDIS_URL``) and is skipped
without them (CI's second ``make test`` runs it). Run it alone with::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_recovery REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m pytest -m recovery tests/recovery

The figures each test measured are printed in a "recovery figures" section at the end of the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.fake_esp import FakeEsp
from tests.recovery.harness import ESP_TOKEN, Recovery, child_database_url, child_env, child_redis_url, flush_redis

HERE = Path(__file__).parent
FIGURES: list[str] = []


def _skip_reason() -> str | None:
    from django.conf import settings

    if "postgresql" not in str(settings.DATABASES["default"]["ENGINE"]):
        return "the recovery suite needs PostgreSQL (DATABASE_URL)"
    if not os.environ.get("REDIS_URL"):
        return "the recovery suite needs Redis (REDIS_URL)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.recovery)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("recovery figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure: printed now and again in the run's "recovery figures" section."""
    began = time.monotonic()
    name = request.node.name

    def record(line: str) -> None:
        text = f"{name} [{time.monotonic() - began:5.1f} s]: {line}"
        FIGURES.append(text)
        print(text, flush=True)

    return record


@pytest.fixture
def recovery(transactional_db: None, tmp_path: Path, figures: Callable[[str], None]) -> Iterator[Recovery]:
    """The fake ESP, and the cluster and ticker (started by the test with ``recovery.start()``),
    all stopped afterwards whatever happened; the children's Redis database flushed before and after.

    Depends on ``transactional_db``: the rows are committed, so the children see them, and the
    children are gone before pytest-django empties the tables. The end state is recorded in the
    figures whether the test passed or not."""
    redis_url = child_redis_url(os.environ["REDIS_URL"])
    flush_redis(redis_url)
    with FakeEsp(token=ESP_TOKEN) as esp:
        harness = Recovery(
            esp, env=child_env(esp, database_url=child_database_url(), redis_url=redis_url), log_dir=tmp_path
        )
        try:
            yield harness
        finally:
            harness.stop()
            figures(f"end state: {harness.summary()}; logs in {tmp_path}")
            flush_redis(redis_url)
