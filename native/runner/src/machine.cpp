// The C++ twin of edgekit/runtime/machine.py (same sources, same definitions).
#include "machine.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "model.hpp"

namespace edgekit {
namespace {

double monotonic_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> allowed_cpus() {
    std::vector<int> out;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
    }
    if (out.empty()) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (int cpu = 0; cpu < std::max(1L, n); ++cpu) out.push_back(cpu);
    }
    return out;
}

bool cpu_ticks(long long* busy, long long* total) {
    std::ifstream f("/proc/stat");
    if (!f) return false;
    std::vector<int> allowed = allowed_cpus();
    std::string line;
    *busy = *total = 0;
    while (std::getline(f, line)) {
        if (line.rfind("cpu", 0) != 0 || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
        std::istringstream in(line);
        std::string name;
        in >> name;
        int cpu = std::atoi(name.c_str() + 3);
        if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end()) continue;
        long long t[8] = {0};
        for (auto& v : t) in >> v;  // user nice system idle iowait irq softirq steal
        long long sum = 0;
        for (auto v : t) sum += v;
        *total += sum;
        *busy += sum - t[3] - t[4];
    }
    return *total > 0;
}

int idle_cpus(double window_s = 0.2) {
    long long b0, t0, b1, t1;
    bool before = cpu_ticks(&b0, &t0);
    std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
    bool after = cpu_ticks(&b1, &t1);
    int cpus = available_cpus();
    if (!before || !after || t1 <= t0) return cpus;
    double busy = double(b1 - b0) / double(t1 - t0);
    return std::max(1, int(std::lround(cpus * (1.0 - busy))));
}

int physical_cores() {
    std::set<std::string> cores;
    for (int cpu : allowed_cpus()) {
        std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        std::ifstream core(base + "core_id"), package(base + "physical_package_id");
        std::string c, p;
        if (!(core >> c) || !(package >> p)) return available_cpus();
        cores.insert(p + "/" + c);
    }
    return cores.empty() ? available_cpus() : int(cores.size());
}

double round_to(double v, double unit) { return std::round(v / unit) * unit; }

}  // namespace

MachineSample MachineSample::now() {
    MachineSample s;
    s.wall = monotonic_s();
    s.ticks_known = cpu_ticks(&s.busy, &s.total);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    s.own_cpu_s = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
                  usage.ru_stime.tv_usec / 1e6;
    return s;
}

std::pair<int, std::string> default_threads() {
    int cores = physical_cores(), idle = idle_cpus();
    int threads = std::max(1, std::min(cores, idle));
    return {threads, std::to_string(cores) + " physical core(s), " + std::to_string(idle) + " CPU(s) idle"};
}

Json others_between(const MachineSample& a, const MachineSample& b) {
    Json out = Json(Json::Object{});
    double wall = b.wall - a.wall;
    if (!a.ticks_known || !b.ticks_known || wall <= 0 || b.total <= a.total) return out;
    double total_s = wall * available_cpus();
    double busy_s = double(b.busy - a.busy) / double(b.total - a.total) * total_s;
    double others = std::max(0.0, busy_s - (b.own_cpu_s - a.own_cpu_s));
    out.set("others_cpu_s", round_to(others, 0.001));
    out.set("others_share", round_to(std::min(1.0, others / total_s), 0.001));
    return out;
}

Json others_over(const MachineSample* start, const MachineSample* end) {
    if (start && end && end->wall - start->wall >= 0.5) {  // the kernel's 10 ms ticks: shorter says little
        Json found = others_between(*start, *end);
        if (!found.as_object().empty()) return found;
    }
    MachineSample before = MachineSample::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    Json found = others_between(before, MachineSample::now());
    if (!found.as_object().empty()) found.set("sampled", "after the runs (too short to tell)");
    return found;
}

Json loadavg() {
    double load[1];
    if (getloadavg(load, 1) != 1) return Json();
    return Json(round_to(load[0], 0.01));
}

Json cpu_mhz() {
    double sum = 0;
    int n = 0;
    for (int cpu : allowed_cpus()) {
        std::ifstream f("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpufreq/scaling_cur_freq");
        long khz = 0;
        if (!(f >> khz)) break;
        sum += khz / 1000.0;
        ++n;
    }
    if (n == 0) {
        std::ifstream f("/proc/cpuinfo");
        std::string line;
        while (std::getline(f, line)) {
            std::string lower = line;
            std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
            if (lower.rfind("cpu mhz", 0) != 0) continue;
            auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            sum += std::atof(line.c_str() + colon + 1);
            ++n;
        }
    }
    return n ? Json(round_to(sum / n, 0.1)) : Json();
}

Json temperature_c() {
    double best = 0;
    bool found = false;
    for (int zone = 0; zone < 256; ++zone) {
        std::ifstream f("/sys/class/thermal/thermal_zone" + std::to_string(zone) + "/temp");
        long milli = 0;
        if (!(f >> milli)) continue;
        best = found ? std::max(best, milli / 1000.0) : milli / 1000.0;
        found = true;
    }
    return found ? Json(round_to(best, 0.1)) : Json();
}

}  // namespace edgekit
