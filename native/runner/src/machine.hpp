// What the machine is doing while the runner measures, as edgekit/runtime/machine.py reads it: the
// threads a runtime gets when none is asked for, the CPU time other processes take, the load average,
// the clock and the temperature. Linux and Android read /proc and /sys.
#pragma once

#include <string>
#include <utility>

#include "json.hpp"

namespace edgekit {

// One moment's counters: wall clock, the busy and total ticks of this process's CPUs, this process's CPU time.
struct MachineSample {
    double wall = 0;
    bool ticks_known = false;
    long long busy = 0, total = 0;
    double own_cpu_s = 0;
    static MachineSample now();
};

// The thread count and why (one per physical core, less the cores other processes keep busy now).
std::pair<int, std::string> default_threads();
// {"others_cpu_s", "others_share"} between two samples; an empty object where the counters cannot tell.
Json others_between(const MachineSample& a, const MachineSample& b);
// Over the measured runs, or, where they were too short, over a quarter second now ("sampled").
Json others_over(const MachineSample* start, const MachineSample* end);
Json loadavg();      // the 1-minute load average; null where unknown
Json cpu_mhz();      // the mean clock of this process's CPUs; null where unreadable
Json temperature_c();  // the hottest thermal zone; null where none is readable

}  // namespace edgekit
