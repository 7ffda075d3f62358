// The runner protocol's two ends here (docs/runner-protocol.md): the request, checked before any
// work as the Python runner checks it, and the events, one JSON line each, flushed at once.
#pragma once

#include <string>
#include <vector>

#include "json.hpp"

namespace edgekit {

constexpr int PROTOCOL = 1;

struct Request {
    std::string artifact;
    int threads = 0;  // 0: the runner's choice
    std::vector<int> prompt_ids;
    int gen = 0;
    int warmup = 1;
    int runs = 5;
    bool with_eval = false;
    std::vector<int> eval_ids;
    int window = 0;
    bool with_topk = false;
    std::vector<std::vector<int>> ref_topk;
    bool ops = false;         // an ops event (this runner: why it has none)
    double duration_s = 0;    // > 0: a sustained run, sample events
};

constexpr double MAX_DURATION_S = 3600;

// Parses and checks the request text; throws RunnerError ("ValueError: ...") naming what is wrong.
Request parse_request(const std::string& text);

// Writes {"event": name, ...fields} as one line on stdout and flushes it.
void emit(const std::string& name, const Json& fields);

// The step a failure is reported at; an interrupt (SIGINT, SIGTERM) reports it too.
void set_step(const std::string& step);
const std::string& current_step();
void install_interrupt_handler();

}  // namespace edgekit
