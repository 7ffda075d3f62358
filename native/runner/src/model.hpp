// What every backend gives the runner: a causal LM with its own KV cache (the Python runner's
// LanguageModel protocol, edgekit/runtime/__init__.py).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "json.hpp"

namespace edgekit {

// A failure the runner reports as one error event ("<kind>: <message>").
struct RunnerError : std::runtime_error {
    RunnerError(std::string kind, const std::string& message) : std::runtime_error(message), kind(std::move(kind)) {}
    std::string kind;
};

inline RunnerError value_error(const std::string& message) { return RunnerError("ValueError", message); }

// Logits of one forward call: rows x vocab, row-major float32.
struct Logits {
    int rows = 0;
    int vocab = 0;
    std::vector<float> data;
    const float* row(int i) const { return data.data() + size_t(i) * size_t(vocab); }
};

class LanguageModel {
public:
    virtual ~LanguageModel() = default;
    virtual int vocab_size() const = 0;
    virtual int max_context() const = 0;
    // Forget the cache: the next forward starts a new sequence.
    virtual void reset() = 0;
    // Append ids to the sequence; the logits of every position, or of the last only (last_only).
    virtual Logits forward(const std::vector<int>& ids, bool last_only) = 0;
};

// The artifact in `folder` opened with its target's backend (the manifest's "target"); threads <= 0:
// the CPUs this process may run on.
std::unique_ptr<LanguageModel> open_artifact(const std::string& folder, int threads);
// The protocol's ops event: per-operator times of one profiled generation, or why there are none.
Json profile_ops(const std::string& folder, int threads, const std::vector<int>& prompt, int gen);

// What this runner was built with: "<key>": "<version>" for each backend compiled in.
std::vector<std::pair<std::string, std::string>> backend_versions();

int available_cpus();

}  // namespace edgekit
