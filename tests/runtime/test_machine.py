"""What the runner knows of the machine while it measures: CPUs, others' CPU time, threads it picks."""

from __future__ import annotations

from edgekit.runtime import machine


def test_idle_cpus_and_the_default_threads_are_within_the_usable_cpus():
    cpus = machine.usable_cpus()
    assert 1 <= machine.idle_cpus(0.05) <= cpus and 1 <= machine.physical_cores() <= cpus
    threads, why = machine.default_threads()
    assert 1 <= threads <= machine.physical_cores() and "physical core(s)" in why and "idle" in why
    idle = machine.idle_threads()
    assert idle is None or 1 <= idle < cpus


def test_others_cpu_time_is_the_machine_s_busy_time_less_this_process_s():
    """Two CPUs busy for 1 s while this process used 0.5 s of CPU: others took 1.5 s, 75 % of capacity."""
    cpus = machine.usable_cpus()
    a = machine.Sample(10.0, (1000, 4000), 2.0)
    b = machine.Sample(11.0, (1000 + 100 * cpus, 4000 + 100 * cpus), 2.5)  # every CPU busy for the second
    got = machine.others_between(a, b)
    assert got["others_cpu_s"] == round(cpus - 0.5, 3) and got["others_share"] == round((cpus - 0.5) / cpus, 3)
    assert machine.others_between(a, machine.Sample(11.0, None, 2.5)) == {}  # no /proc/stat: nothing said
    quiet = machine.Sample(11.0, (1000 + 50, 4000 + 100 * cpus), 2.5)  # only this process's half second
    assert machine.others_between(a, quiet)["others_share"] == 0.0


def test_a_live_sample_reads_this_machine():
    s = machine.Sample.now()
    assert s.own_cpu_s > 0 and (s.ticks is None or s.ticks[1] >= s.ticks[0] >= 0)
    mhz = machine.cpu_mhz()
    assert mhz is None or mhz > 0
