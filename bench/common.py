"""What the benchmarks share: their output, the throwaway PostgreSQL database and Redis database
they own, the facts about the machine they report, the check that it is quiet, and the rewriting
of their own section of docs/performance.md."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "performance.md"
# The opening of docs/performance.md when a benchmark that may create it finds none.
DOC_PREAMBLE = (
    "# Performance\n\n"
    "`make bench` runs every benchmark. Each measures a baseline in the same run and gives its figures "
    "as ratios to it, so numbers from different machines compare by their ratios. Each benchmark "
    "rewrites its own section below after a full-size run.\n\n"
)


def log(text: str = "") -> None:
    print(text, flush=True)


def int_env(name: str, default: int) -> int:
    """The whole number in environment variable ``name`` ("1_000_000" and "1,000,000" too), else ``default``."""
    value = os.environ.get(name, "").strip()
    return int(value.replace("_", "").replace(",", "")) if value else default


# --- The databases a benchmark owns -------------------------------------------------------------


def bench_database(default_url: str, *, program: str) -> tuple[str, str]:
    """DATABASE_URL (else ``default_url``) and its database's name, refusing one that is not
    PostgreSQL or does not look like a benchmark's: the run drops it."""
    import dj_database_url

    database_url = os.environ.get("DATABASE_URL") or default_url
    config = dj_database_url.parse(database_url)
    if "postgresql" not in str(config.get("ENGINE", "")):
        raise SystemExit(f"{program} needs PostgreSQL; DATABASE_URL is {database_url!r}.")
    name = str(config.get("NAME") or "")
    if "bench" not in name.lower():
        raise SystemExit(
            f"{program} drops and recreates its database; {name!r} has no 'bench' in its name. "
            f"Unset DATABASE_URL (default {default_url}) or point it at a throwaway database."
        )
    return database_url, name


def refuse_redis_db_zero(redis_url: str, *, program: str, advice: str) -> None:
    """Stop unless ``redis_url`` names a Redis database other than 0: the run flushes it.

    ``advice`` ends the message, after "<program> flushes its Redis database; "."""
    if (urlparse(redis_url).path.strip("/") or "0") == "0":
        raise SystemExit(f"{program} flushes its Redis database; {advice}")


def server_params(database_url: str) -> dict[str, str]:
    """psycopg connection parameters for the server's ``postgres`` database, beside ``database_url``'s."""
    import dj_database_url

    config = dj_database_url.parse(database_url)
    params = {
        "dbname": "postgres",
        "host": str(config.get("HOST") or ""),
        "port": str(config.get("PORT") or ""),
        "user": str(config.get("USER") or ""),
        "password": str(config.get("PASSWORD") or ""),
    }
    return {k: v for k, v in params.items() if v}


def recreate_database(database_url: str, name: str) -> None:
    """Drop database ``name`` (even with sessions open) and create it again, empty."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(make_conninfo("", **server_params(database_url)), autocommit=True) as conn:
        identifier = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(identifier))


# --- The machine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What every benchmark says about where it ran; a benchmark's own Machine adds to it."""

    date: str
    system: str
    cpu: str
    nproc: int
    ram_gb: float
    python: str
    django: str
    psycopg: str
    postgres: str


def describe_machine() -> Machine:
    """The facts, now (Django set up: the PostgreSQL version comes through its connection)."""
    import django

    return Machine(
        date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        system=f"{platform.system()} {platform.release()}",
        cpu=cpu_model(),
        nproc=os.cpu_count() or 0,
        ram_gb=ram_gb(),
        python=platform.python_version(),
        django=django.get_version(),
        psycopg=metadata.version("psycopg"),
        postgres=postgres_version(),
    )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        if match := re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE):
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def ram_gb() -> float:
    """Total memory in GiB from /proc/meminfo; 0.0 where there is none."""
    with contextlib.suppress(OSError):
        if match := re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE):
            return int(match.group(1)) / 1024 / 1024
    return 0.0


def postgres_version() -> str:
    """The server's version number ("16.4"), through Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0]).split()[0]


# --- Other work on the machine ------------------------------------------------------------------


def other_cpu_share(seconds: float = 2.0) -> float | None:
    """The share of all CPUs busy while this benchmark sits idle (Linux /proc/stat); None elsewhere.

    Taken before each timed phase, when nothing of the benchmark runs: anything seen is other work
    on the machine (or PostgreSQL still settling), which makes the figures pessimistic."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return max(0.0, 1 - (idle1 - idle0) / total) if total > 0 else None


def cpu_spread(rounds: int = 30) -> float:
    """How much the machine itself spreads timings: the median over the fastest of ``rounds`` runs
    of the same pure-Python loop (1.0 on a quiet, steady machine). A page's median over its
    fastest request is worth reading against it."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        sum(i * i for i in range(200_000))
        times.append(time.perf_counter() - started)
    return statistics.median(times) / min(times)


def share_text(value: float | None) -> str:
    """A share of the CPUs as "12 %", or "n/a"."""
    return "n/a" if value is None else f"{100 * value:.0f} %"


def wait_for_quiet(timeout: float) -> None:
    """Wait (up to ``timeout`` seconds) until other work uses under a tenth of the machine for 5 s."""
    deadline = time.monotonic() + timeout
    while True:
        share = other_cpu_share(5.0)
        if share is None or share < 0.1:
            log(f"  the machine is quiet (other CPU use {share_text(share)})")
            return
        if time.monotonic() >= deadline:
            log(f"  the machine is still busy (other CPU use {share_text(share)}); going on anyway")
            return
        log(f"  other CPU use {share_text(share)}: waiting for the machine to be quiet")


# --- docs/performance.md ------------------------------------------------------------------------


def replace_doc_section(path: Path, start: str, end: str, markdown: str, *, create: bool) -> bool:
    """Put ``markdown`` (a section from its ``start`` marker to its ``end`` marker) in place of the
    file's section between those markers; True when the file was written.

    Where the file has no such section: with ``create`` it is appended (to a new file, after
    DOC_PREAMBLE, if there is no file); without, nothing is written and the answer is False."""
    text = path.read_text() if path.exists() else None
    if text is not None and start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + markdown + ("\n" + after if after else "")
    elif not create:
        return False
    elif text is not None:
        text = text.rstrip("\n") + "\n\n" + markdown
    else:
        text = DOC_PREAMBLE + markdown
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True
