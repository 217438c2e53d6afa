"""Who used the CPUs during a timed phase: per-process CPU time from Linux's /proc.

On a small machine the web/producer process, the workers, django-q2's monitor and pusher,
PostgreSQL, Redis and the email provider's stand-in all share the same cores, so "where does the
time go" is first "which process burns the CPU". A snapshot reads utime+stime of every process; a
Sampler takes one a second during a phase, so processes that come and go (django-q2 recycles a
worker every 500 tasks, and its database connection goes with it) are counted too. The CPU each
process used between the first and last sample, grouped by role, is the phase's CPU budget.
Elsewhere than Linux the snapshots are empty and nothing is reported.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# Roles that are not the product nor the benchmark.
OTHERS = frozenset({"other processes", "PostgreSQL (other databases)"})


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    own: float  # seconds of CPU, utime + stime
    start: int  # clock ticks after boot
    cmdline: str


@dataclass
class Snapshot:
    at: float = field(default_factory=time.monotonic)
    procs: dict[int, Proc] = field(default_factory=dict)
    busy: float = 0.0  # seconds of CPU used on the whole machine since boot, from /proc/stat
    available: bool = False


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    return Proc(
        pid=pid,
        ppid=int(rest[1]),
        own=(int(rest[11]) + int(rest[12])) / TICKS,
        start=int(rest[19]),
        cmdline=cmdline,
    )


def snapshot() -> Snapshot:
    snap = Snapshot()
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return snap
    # user, nice, system, irq, softirq: not idle, not waiting for I/O, not stolen by the hypervisor.
    snap.busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / TICKS
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := _read_proc(int(entry.name))) is not None:
            snap.procs[proc.pid] = proc
    snap.available = True
    return snap


@dataclass(frozen=True)
class ClusterPids:
    """The processes of one ``manage.py qcluster``: main → sentinel → workers, monitor, pusher."""

    main: int
    sentinel: int | None
    workers: tuple[int, ...]
    monitor: int | None
    pusher: int | None


def cluster_pids(main: int, *, workers: int) -> ClusterPids:
    """Tell the sentinel's children apart by start order (django-q2 spawns the workers, then the
    monitor, then the pusher). Call it once the cluster reports running."""
    snap = snapshot()
    sentinels = [p for p in snap.procs.values() if p.ppid == main]
    if len(sentinels) != 1:
        return ClusterPids(main=main, sentinel=None, workers=(), monitor=None, pusher=None)
    sentinel = sentinels[0].pid
    children = sorted((p for p in snap.procs.values() if p.ppid == sentinel), key=lambda p: (p.start, p.pid))
    pids = [p.pid for p in children]
    return ClusterPids(
        main=main,
        sentinel=sentinel,
        workers=tuple(pids[:workers]),
        monitor=pids[workers] if len(pids) > workers else None,
        pusher=pids[workers + 1] if len(pids) > workers + 1 else None,
    )


@dataclass(frozen=True)
class Roles:
    bench: int
    esp: int | None
    cluster: ClusterPids | None
    database: str


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds by role over a phase, and what the machine could have given."""

    wall: float
    cpus: int
    machine_busy: float
    by_role: dict[str, float]

    @property
    def capacity(self) -> float:
        return self.wall * self.cpus

    def text(self) -> str:
        if not self.by_role:
            return "n/a"
        parts = [f"{role} {seconds:.1f} s" for role, seconds in sorted(self.by_role.items(), key=lambda kv: -kv[1])]
        return (
            f"{self.machine_busy:.1f} CPU-s busy of {self.capacity:.1f} ({self.cpus} CPUs × {self.wall:.1f} s): "
            + ", ".join(parts)
        )


def _role(proc: Proc, roles: Roles) -> str:
    cluster = roles.cluster
    if proc.pid == roles.bench:
        return "benchmark process"
    if proc.pid == roles.esp:
        return "fake provider"
    if cluster is not None:
        if proc.pid == cluster.monitor:
            return "django-q2 monitor"
        if proc.pid == cluster.pusher:
            return "django-q2 pusher"
        if proc.pid in (cluster.main, cluster.sentinel):
            return "django-q2 sentinel"
        if cluster.sentinel is not None and proc.ppid == cluster.sentinel:
            return "django-q2 workers"
    if proc.cmdline.startswith("postgres: "):
        if f" {roles.database} " in f"{proc.cmdline} ":
            return "PostgreSQL (benchmark database)"
        if "(" in proc.cmdline or "[local]" in proc.cmdline:
            return "PostgreSQL (other databases)"
        return "PostgreSQL (server processes)"
    if "/postgres " in f"{proc.cmdline} ":
        return "PostgreSQL (server processes)"
    if proc.cmdline.startswith("redis-server"):
        return "Redis"
    return "other processes"


class Sampler:
    """Snapshots every ``interval`` seconds in a background thread, so that processes that come
    and go within a phase (recycled workers and their database connections) are counted up to
    their last sample. Costs about 1 % of one CPU."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.first: Snapshot | None = None
        self.last: Snapshot | None = None
        self.latest: dict[tuple[int, int], Proc] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _take(self) -> None:
        snap = snapshot()
        if self.first is None:
            self.first = snap
        self.last = snap
        for proc in snap.procs.values():
            self.latest[(proc.pid, proc.start)] = proc

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()

    def start(self) -> Sampler:
        self._take()
        self._thread.start()
        return self

    def stop(self) -> Sampler:
        self._stop.set()
        self._thread.join()
        self._take()
        return self

    def use(self, roles: Roles) -> CpuUse:
        """CPU seconds by role between the first and the last sample."""
        first, last = self.first, self.last
        cpus = os.cpu_count() or 1
        if first is None or last is None or not (first.available and last.available):
            return CpuUse(wall=0.0, cpus=cpus, machine_busy=0.0, by_role={})
        by_role: dict[str, float] = defaultdict(float)
        for (pid, start), proc in self.latest.items():
            before = first.procs.get(pid)
            base = before.own if before is not None and before.start == start else 0.0
            if proc.own > base:
                by_role[_role(proc, roles)] += proc.own - base
        machine_busy = last.busy - first.busy
        accounted = sum(by_role.values())
        if machine_busy > accounted:
            # Processes that lived between two samples, and the kernel's own work.
            by_role["unaccounted (short-lived, kernel)"] += machine_busy - accounted
        return CpuUse(
            wall=last.at - first.at,
            cpus=cpus,
            machine_busy=machine_busy,
            by_role={k: v for k, v in by_role.items() if v >= 0.05},
        )
