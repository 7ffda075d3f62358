// edgekit's native runner: one request on stdin, protocol events on stdout (docs/runner-protocol.md).
// The same flow as edgekit/runtime/__main__.py: hello, load, warm-up and measured runs, the accuracy
// pass, done; any failure one error event and exit status 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <tuple>
#include <sys/utsname.h>
#include <unistd.h>

#include "machine.hpp"
#include "measure.hpp"
#include "model.hpp"
#include "protocol.hpp"

#ifndef EDGEKIT_RUNNER_VERSION
#define EDGEKIT_RUNNER_VERSION "dev"
#endif

namespace {

using edgekit::Json;

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const double started = now_s();

bool all_digits(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// the CPU's name as the Python runner reads it from /proc/cpuinfo
std::string cpu_name(const std::string& machine) {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = trim(line.substr(0, colon));
        for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
        if (key == "model name" || key == "hardware" || key == "processor") {
            std::string value = trim(line.substr(colon + 1));
            if (!value.empty() && !all_digits(value)) return value;
        }
    }
    return machine;
}

Json runner_info() {
    utsname u{};
    uname(&u);
    Json info = Json(Json::Object{});
    info.set("os", std::string(u.sysname) + " " + u.release);
    info.set("machine", std::string(u.machine));
    info.set("cpu", cpu_name(u.machine));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    info.set("cpu_count", cpus > 0 ? Json(cpus) : Json());
    info.set("native_runner", EDGEKIT_RUNNER_VERSION);
    for (const auto& kv : edgekit::backend_versions()) info.set(kv.first, kv.second);
    return info;
}

Json object() { return Json(Json::Object{}); }

// As the Python runner's sustained(): a sample event each second or so, for duration_s seconds.
void sustained(edgekit::LanguageModel& lm, const edgekit::Request& request) {
    double start = now_s(), last = start, decode_s = 0, prompt_s = 0;
    long runs = 0, steps = 0;
    while (last - start < request.duration_s) {
        Json figures = edgekit::latency_run(lm, request.prompt_ids, request.gen);
        ++runs;
        prompt_s += figures.find("ttft_ms")->as_double() / 1000;
        const Json* tok_s = figures.find("decode_tok_s");
        long generated = figures.find("generated")->as_int();
        if (tok_s && tok_s->is_number() && tok_s->as_double() > 0) {
            steps += generated - 1;
            decode_s += (generated - 1) / tok_s->as_double();
        }
        double now = now_s();
        if (now - last >= 1 || now - start >= request.duration_s) {
            Json event = object();
            event.set("t_s", std::round((now - start) * 1000) / 1000);
            event.set("runs", runs);
            event.set("decode_tok_s", decode_s > 0 ? Json(steps / decode_s) : Json());
            event.set("prefill_tok_s", runs * double(request.prompt_ids.size()) / prompt_s);
            event.set("temp_c", edgekit::temperature_c());
            event.set("cpu_mhz", edgekit::cpu_mhz());
            edgekit::emit("sample", event);
            runs = steps = 0;
            decode_s = prompt_s = 0;
            last = now;
        }
    }
}

int run() {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    edgekit::Request request = edgekit::parse_request(text);

    // the threads: asked, or chosen here as the Python runner does (choosing samples the CPUs for a
    // moment: not the model's load time)
    double choosing = now_s();
    int threads = request.threads;
    std::string why = "asked";
    if (threads <= 0) std::tie(threads, why) = edgekit::default_threads();
    choosing = now_s() - choosing;
    Json load_before = edgekit::loadavg();
    Json hello = object();
    hello.set("protocol", edgekit::PROTOCOL);
    hello.set("runner", runner_info());
    hello.set("threads", threads);
    hello.set("threads_from", why);
    edgekit::emit("hello", hello);

    edgekit::set_step("load");
    auto lm = edgekit::open_artifact(request.artifact, threads);
    bool known = false;
    double age = edgekit::process_age_s(&known);
    Json loaded = object();
    loaded.set("load_s", (known ? age : now_s() - started) - choosing);
    loaded.set("rss_mb", edgekit::peak_rss_mb());
    edgekit::emit("loaded", loaded);

    int total = request.warmup + request.runs;
    edgekit::MachineSample first, last;
    bool measured = false;
    for (int i = 0; i < total; ++i) {
        edgekit::set_step("run " + std::to_string(i + 1) + "/" + std::to_string(total));
        edgekit::MachineSample before = edgekit::MachineSample::now();
        Json figures = edgekit::latency_run(*lm, request.prompt_ids, request.gen);
        last = edgekit::MachineSample::now();
        if (i >= request.warmup && !measured) {
            first = before;
            measured = true;
        }
        Json event = object();
        event.set("index", i);
        event.set("warmup", i < request.warmup);
        for (const auto& kv : figures.as_object()) event.set(kv.first, kv.second);
        Json others = edgekit::others_between(before, last);  // (named: a temporary's object would dangle)
        for (const auto& kv : others.as_object()) event.set(kv.first, kv.second);
        edgekit::emit("run", event);
    }
    Json during = edgekit::others_over(measured ? &first : nullptr, measured ? &last : nullptr);

    // the peak of loading and generating, read before the accuracy pass can raise it
    double peak = edgekit::peak_rss_mb();
    if (request.duration_s > 0) {
        edgekit::set_step("sustained");
        sustained(*lm, request);
    }
    if (request.ops) {
        edgekit::set_step("ops");
        edgekit::emit("ops", edgekit::profile_ops(request.artifact, threads, request.prompt_ids, request.gen));
    }
    if (request.with_eval) {
        edgekit::set_step("accuracy");
        bool own = edgekit::reset_peak_rss();
        Json scores = edgekit::accuracy(*lm, request.eval_ids, request.window, request.ref_topk, request.with_topk);
        Json event = object();
        event.set("eval_peak_rss_mb", edgekit::peak_rss_mb());
        event.set("eval_peak_rss_reset", own);
        for (const auto& kv : scores.as_object()) event.set(kv.first, kv.second);
        edgekit::emit("accuracy", event);
    }
    Json load = object();
    load.set("cpus", edgekit::available_cpus());
    load.set("loadavg_1m", Json(Json::Array{load_before, edgekit::loadavg()}));
    load.set("cpu_mhz", edgekit::cpu_mhz());
    for (const auto& kv : during.as_object()) load.set(kv.first, kv.second);
    Json done = object();
    done.set("peak_rss_mb", peak);
    done.set("load", load);
    edgekit::emit("done", done);
    return 0;
}

void fail(const std::string& message) {
    std::string one_line = message;
    for (auto& c : one_line)
        if (c == '\n' || c == '\r') c = ' ';
    Json event = object();
    event.set("step", edgekit::current_step());
    event.set("message", one_line.empty() ? "no message" : one_line);
    edgekit::emit("error", event);
}

}  // namespace

int main() {
    edgekit::install_interrupt_handler();
    try {
        return run();
    } catch (const edgekit::RunnerError& e) {
        fail(e.kind + ": " + e.what());
    } catch (const std::exception& e) {
        fail(std::string("RuntimeError: ") + e.what());
    }
    return 1;
}
