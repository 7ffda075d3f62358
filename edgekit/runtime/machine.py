"""What the machine is doing while it measures: its CPUs (usable, physical, idle now), the CPU time
other processes take, the load average and the clock frequency; and the thread count a runtime
gets when none is asked for. Linux and Android read /proc and /sys; elsewhere what the OS gives.

No edgekit import: the runner runs this on the device; the host's stages use it too.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass


def _cpus() -> set[int]:
    """The CPUs this process may run on (where the OS cannot say, every one it has)."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def usable_cpus() -> int:
    """How many CPUs this process may run on."""
    return len(_cpus())


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of this process's CPUs since boot, from /proc/stat; None elsewhere."""
    allowed = _cpus()
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in allowed:
                    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                    total += sum(ticks)
                    busy += sum(ticks) - ticks[3] - ticks[4]
    except (OSError, ValueError, IndexError):
        return None
    return (busy, total) if total else None


def idle_cpus(window_s: float = 0.2) -> int:
    """How many of this process's CPUs are idle now (at least 1): their idle time over ``window_s``
    while this process sleeps. Where there is no /proc/stat, every usable CPU."""
    before = cpu_ticks()
    time.sleep(window_s)
    after = cpu_ticks()
    cpus = usable_cpus()
    if before is None or after is None or after[1] <= before[1]:
        return cpus
    busy = (after[0] - before[0]) / (after[1] - before[1])
    return max(1, round(cpus * (1.0 - busy)))


def idle_threads() -> int | None:
    """Threads for a reference model and an artifact's runtime in a host process (a parity check, a
    sensitivity measurement): the CPUs idle now when some are busy, else None (each library's
    default). The figures do not depend on it, the time does: a pool wider than the idle CPUs waits
    at every operator for a thread that another process holds (on a busy 2-core machine, 2 torch
    threads made the reference 10x slower than 1)."""
    idle = idle_cpus()
    return idle if idle < usable_cpus() else None


def physical_cores() -> int:
    """This process's CPUs counted by physical core (SMT siblings once), from /sys's topology; the
    usable CPUs where it cannot tell."""
    cores = set()
    for cpu in _cpus():
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            with open(base + "core_id") as f, open(base + "physical_package_id") as g:
                cores.add((g.read().strip(), f.read().strip()))
        except OSError:
            return usable_cpus()
    return len(cores) or usable_cpus()


def default_threads() -> tuple[int, str]:
    """The thread count a runtime gets when none is asked for, and why: one per physical core, less
    the cores other processes keep busy now (at least 1). Measured on a 2-core VM: with the machine
    quiet, 2 threads decode faster than 1; with other work on it, a pool wider than the idle CPUs
    spins or waits on a thread another process holds at every operator (q4_0: 140 tok/s with 1
    thread, 10 with 2), so the busy cores are left out."""
    cores, idle = physical_cores(), idle_cpus()
    threads = max(1, min(cores, idle))
    return threads, f"{cores} physical core(s), {idle} CPU(s) idle"


def cpu_mhz() -> float | None:
    """The mean current clock of this process's CPUs in MHz (cpufreq, else /proc/cpuinfo); None where
    neither says."""
    found = []
    for cpu in sorted(_cpus()):
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq") as f:
                found.append(int(f.read()) / 1000)
        except (OSError, ValueError):
            break
    if not found:
        try:
            with open("/proc/cpuinfo") as f:
                found = [float(line.split(":")[1]) for line in f if line.lower().startswith("cpu mhz")]
        except (OSError, ValueError, IndexError):
            return None
    return round(sum(found) / len(found), 1) if found else None


def temperature_c() -> float | None:
    """The hottest thermal zone's temperature in degrees Celsius (/sys/class/thermal, Linux and
    Android); None where none is readable (most VMs and containers)."""
    import glob

    found = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        try:
            with open(path) as f:
                found.append(int(f.read()) / 1000)
        except (OSError, ValueError):
            continue
    return round(max(found), 1) if found else None


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Sample:
    """The machine's counters at one moment: wall clock, every CPU's busy ticks, this process's CPU time."""

    wall: float
    ticks: tuple[int, int] | None
    own_cpu_s: float

    @classmethod
    def now(cls) -> Sample:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(time.monotonic(), cpu_ticks(), usage.ru_utime + usage.ru_stime)


def others_between(a: Sample, b: Sample) -> dict:
    """What other processes took of the CPUs between two samples: ``others_cpu_s`` (CPU seconds) and
    ``others_share`` (of the CPUs' capacity over the time); empty where the counters cannot tell."""
    wall = b.wall - a.wall
    if a.ticks is None or b.ticks is None or wall <= 0 or b.ticks[1] <= a.ticks[1]:
        return {}
    cpus = usable_cpus()
    total_s = wall * cpus
    busy_s = (b.ticks[0] - a.ticks[0]) / (b.ticks[1] - a.ticks[1]) * total_s  # ticks -> seconds of this span
    others = max(0.0, busy_s - (b.own_cpu_s - a.own_cpu_s))
    return {"others_cpu_s": round(others, 3), "others_share": round(min(1.0, others / total_s), 3)}


# the kernel counts CPU time in ticks (10 ms): a span shorter than this says little of the others
SHORTEST_SPAN_S = 0.5


def others_over(start: Sample | None, end: Sample | None, window_s: float = 0.25) -> dict:
    """What others took of the CPUs from ``start`` to ``end`` (the measured runs); where that span was
    too short for the kernel's counters, over ``window_s`` now, while this process sleeps (``sampled``
    says so)."""
    if start is not None and end is not None and end.wall - start.wall >= SHORTEST_SPAN_S:
        found = others_between(start, end)
        if found:
            return found
    before = Sample.now()
    time.sleep(window_s)
    found = others_between(before, Sample.now())
    return {**found, "sampled": "after the runs (too short to tell)"} if found else {}
