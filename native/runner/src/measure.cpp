#include "measure.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace edgekit {

namespace {

double now_s() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// numpy's argmax: the first maximum, or the first NaN where there is one
int argmax(const float* row, int n) {
    int best = 0;
    for (int i = 0; i < n; ++i) {
        if (std::isnan(row[i])) return i;
        if (row[i] > row[best]) best = i;
    }
    return best;
}

// numpy's percentile with linear interpolation, over sorted values
Json percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return Json();
    double index = q / 100.0 * double(sorted.size() - 1);
    size_t lo = size_t(std::floor(index)), hi = size_t(std::ceil(index));
    double frac = index - double(lo);
    return Json(sorted[lo] + (sorted[hi] - sorted[lo]) * frac);
}

}  // namespace

double peak_rss_mb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            std::istringstream in(line.substr(6));
            long kb = 0;
            if (in >> kb) return double(kb) / 1024.0;
        }
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
#ifdef __APPLE__
    return double(usage.ru_maxrss) / double(1 << 20);
#else
    return double(usage.ru_maxrss) / 1024.0;
#endif
}

bool reset_peak_rss() {
    std::ofstream f("/proc/self/clear_refs");
    if (!f) return false;
    f << "5";
    f.flush();
    return bool(f);
}

double process_age_s(bool* known) {
    *known = false;
    std::ifstream stat("/proc/self/stat"), uptime("/proc/uptime");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    size_t close = text.rfind(')');
    double up = 0;
    if (close == std::string::npos || !(uptime >> up)) return 0;
    std::istringstream fields(text.substr(close + 1));
    std::string field;
    for (int i = 0; i <= 19 && fields >> field; ++i) {
        if (i == 19) {  // starttime: the 22nd field of stat, the 20th after the command
            long ticks = sysconf(_SC_CLK_TCK);
            if (ticks <= 0) return 0;
            *known = true;
            return up - std::stod(field) / double(ticks);
        }
    }
    return 0;
}

Json latency_run(LanguageModel& lm, const std::vector<int>& prompt, int gen) {
    lm.reset();
    int max_new = std::min(gen, lm.max_context() - int(prompt.size()));
    if (max_new <= 0)
        throw value_error("prompt of " + std::to_string(prompt.size()) + " tokens leaves no room in the context of " +
                          std::to_string(lm.max_context()));
    double t0 = now_s();
    Logits first = lm.forward(prompt, true);
    int token = argmax(first.row(first.rows - 1), first.vocab);
    double prefill_s = now_s() - t0;
    int generated = 1;
    std::vector<double> steps;
    while (generated < max_new) {
        double t = now_s();
        Logits next = lm.forward({token}, true);
        token = argmax(next.row(next.rows - 1), next.vocab);
        steps.push_back(now_s() - t);
        ++generated;
    }
    double total = 0;
    for (double s : steps) total += s;
    std::vector<double> ms;
    for (double s : steps) ms.push_back(s * 1000.0);
    std::sort(ms.begin(), ms.end());
    Json out = Json(Json::Object{});
    out.set("ttft_ms", prefill_s * 1000.0);
    out.set("prefill_tok_s", double(prompt.size()) / prefill_s);
    out.set("decode_tok_s", total > 0 ? Json(double(steps.size()) / total) : Json());
    out.set("token_ms_p50", percentile(ms, 50));
    out.set("token_ms_p90", percentile(ms, 90));
    out.set("generated", generated);
    return out;
}

Json accuracy(LanguageModel& lm, const std::vector<int>& ids, int window, const std::vector<std::vector<int>>& ref_topk,
              bool with_topk) {
    Json::Array target_lp, top1, topk_lp, rest_lp;
    size_t row = 0;
    for (size_t start = 0; start + 1 < ids.size(); start += size_t(window)) {
        size_t end = std::min(ids.size(), start + size_t(window) + 1);
        if (end - start < 2) continue;
        std::vector<int> inputs(ids.begin() + long(start), ids.begin() + long(end) - 1);
        lm.reset();
        Logits logits = lm.forward(inputs, false);
        int vocab = logits.vocab;
        std::vector<double> lp(static_cast<size_t>(vocab));
        for (size_t i = 0; i < inputs.size(); ++i) {
            const float* x = logits.row(int(i));
            double top = -HUGE_VAL;  // the row's maximum; NaN where any logit is (numpy's max)
            for (int v = 0; v < vocab; ++v) top = std::isnan(double(x[v])) || std::isnan(top) ? NAN : std::max(top, double(x[v]));
            double sum = 0;
            for (int v = 0; v < vocab; ++v) sum += std::exp(double(x[v]) - top);
            double log_sum = std::log(sum);
            for (int v = 0; v < vocab; ++v) lp[size_t(v)] = double(x[v]) - top - log_sum;
            int next = ids[start + i + 1];
            if (next < 0 || next >= vocab) throw value_error("evaluation token " + std::to_string(next) + " is outside the vocabulary");
            target_lp.emplace_back(lp[size_t(next)]);
            int best = 0;
            for (int v = 0; v < vocab; ++v) {
                if (std::isnan(lp[size_t(v)])) { best = v; break; }
                if (lp[size_t(v)] > lp[size_t(best)]) best = v;
            }
            if (!std::isfinite(top)) best = -1;  // a broken row (a NaN, +inf, nothing finite) agrees with nothing
            top1.emplace_back(best);
            if (with_topk) {
                if (row >= ref_topk.size()) throw value_error("ref_topk has fewer rows than the positions scored");
                Json::Array picked;
                double mass = 0;
                for (int t : ref_topk[row]) {
                    if (t < 0 || t >= vocab) throw value_error("ref_topk token " + std::to_string(t) + " is outside the vocabulary");
                    picked.emplace_back(lp[size_t(t)]);
                    mass += std::exp(lp[size_t(t)]);
                }
                double rest = 1.0 - mass;
                rest_lp.emplace_back(std::log(rest < 1e-30 ? 1e-30 : rest));  // NaN stays NaN, as np.clip leaves it
                topk_lp.emplace_back(std::move(picked));
            }
            ++row;
        }
    }
    Json out = Json(Json::Object{});
    out.set("target_logprob", std::move(target_lp));
    out.set("argmax", std::move(top1));
    if (with_topk) {
        out.set("topk_logprob", std::move(topk_lp));
        out.set("rest_logprob", std::move(rest_lp));
    }
    return out;
}

}  // namespace edgekit
