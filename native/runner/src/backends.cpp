// The backend table: one entry per runtime this runner was compiled with (CMake defines
// EDGEKIT_WITH_<RUNTIME> where it found that runtime's libraries), chosen by the manifest's target.
#include <fstream>
#include <sched.h>
#include <sstream>
#include <unistd.h>

#include "backends.hpp"

namespace edgekit {

namespace {

struct Backend {
    const char* target;
    Opener open;
    const char* version_key;
    const char* version;
};

const std::vector<Backend>& table() {
    static const std::vector<Backend> backends = {
#ifdef EDGEKIT_WITH_LLAMACPP
        {"gguf", open_llamacpp, "llama_cpp_python", EDGEKIT_LLAMACPP_VERSION},
#endif
#ifdef EDGEKIT_WITH_EXECUTORCH
        {"executorch", open_executorch, "executorch", EDGEKIT_EXECUTORCH_VERSION},
#endif
    };
    return backends;
}

Json read_manifest(const std::string& folder) {
    std::string path = folder + "/edgekit.json";
    std::ifstream f(path, std::ios::binary);
    if (!f) throw RunnerError("FileNotFoundError", "cannot read " + path);
    std::stringstream text;
    text << f.rdbuf();
    try {
        Json manifest = Json::parse(text.str());
        if (!manifest.is_object() || !manifest.find("runtime") || !manifest.find("runtime")->is_object())
            throw std::runtime_error("no runtime section");
        return manifest;
    } catch (const std::runtime_error& e) {
        throw value_error("the manifest " + path + " is not one edgekit wrote (" + e.what() + ")");
    }
}

}  // namespace

std::unique_ptr<LanguageModel> open_artifact(const std::string& folder, int threads) {
    Json manifest = read_manifest(folder);
    const Json* target = manifest.find("target");
    std::string name = target && target->is_string() ? target->as_string() : "";
    for (const auto& b : table())
        if (name == b.target) return b.open(folder, *manifest.find("runtime"), threads > 0 ? threads : available_cpus());
    std::string built;
    for (const auto& b : table()) built += std::string(built.empty() ? "" : ", ") + b.target;
    throw value_error("this native runner has no backend for target '" + name + "' (built with: " +
                      (built.empty() ? "none" : built) + ")");
}

Json profile_ops(const std::string& folder, int threads, const std::vector<int>& prompt, int gen) {
    Json manifest = read_manifest(folder);
    const Json* target = manifest.find("target");
    std::string name = target && target->is_string() ? target->as_string() : "";
#ifdef EDGEKIT_WITH_EXECUTORCH
    if (name == "executorch") return executorch_ops(folder, *manifest.find("runtime"), threads, prompt, gen);
#endif
    Json out = Json(Json::Object{});
    out.set("source", Json());
    out.set("unavailable", name == "gguf"
        ? std::string("llama.cpp gives no per-operator times through its API: llama_perf_context reports only the "
                      "prompt and decode totals, and ggml's per-node timing is not exposed by its library")
        : "this native runner gives no per-operator times for target '" + name + "'");
    return out;
}

std::vector<std::pair<std::string, std::string>> backend_versions() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& b : table()) out.emplace_back(b.version_key, b.version);
    return out;
}

int available_cpus() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? int(n) : 1;
}

// Runtime-section helpers the backends share.
std::string runtime_string(const Json& runtime, const std::string& key, const std::string& fallback) {
    const Json* v = runtime.find(key);
    if (!v) return fallback;
    if (!v->is_string()) throw value_error("the manifest's runtime." + key + " is not a string");
    return v->as_string();
}

long long runtime_int(const Json& runtime, const std::string& key) {
    const Json* v = runtime.find(key);
    if (!v || !v->is_int()) throw value_error("the manifest's runtime has no integer " + key);
    return v->as_int();
}

}  // namespace edgekit
