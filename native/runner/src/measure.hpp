// The measurement protocol, as edgekit/runtime/measure.py and generate.py define it.
#pragma once

#include <vector>

#include "json.hpp"
#include "model.hpp"

namespace edgekit {

double peak_rss_mb();        // VmHWM of /proc/self/status, else getrusage's maxrss
bool reset_peak_rss();       // Linux: /proc/self/clear_refs "5"; false where it cannot
double process_age_s(bool* known);  // seconds since this process started (/proc), known=false where it can't tell

// One measured generation: exactly `gen` tokens (bounded by the context) after `prompt`, greedy.
Json latency_run(LanguageModel& lm, const std::vector<int>& prompt, int gen);

// The accuracy pass over `ids`, windows of `window` + 1 tokens; `ref_topk` (positions x k) may be empty.
Json accuracy(LanguageModel& lm, const std::vector<int>& ids, int window, const std::vector<std::vector<int>>& ref_topk,
              bool with_topk);

}  // namespace edgekit
