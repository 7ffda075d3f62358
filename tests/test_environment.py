"""Facts about this machine: the CPUs this process may use and how many of them are idle."""

from __future__ import annotations

from edgekit import parity
from edgekit.environment import idle_cpus, usable_cpus


def test_idle_cpus_are_some_of_the_usable_ones():
    assert 1 <= idle_cpus(0.05) <= usable_cpus()


def test_parity_threads_are_the_idle_cpus_or_the_libraries_default():
    threads = parity.threads()
    assert threads is None or 1 <= threads < usable_cpus()
