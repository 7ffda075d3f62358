// llama.cpp backend: a .gguf file through llama.cpp's C API, opened as edgekit/runtime/llamacpp.py
// opens it (context = the manifest's max_context, one llama_decode per call, logits only for the rows
// the caller reads). llama.cpp's log is held back and written to stderr only when a step fails.
#include <cstdio>
#include <deque>
#include <mutex>

#include "llama.h"

#include "backends.hpp"

namespace edgekit {

namespace {

std::mutex log_mutex;
std::deque<std::string> log_lines;  // the last lines llama.cpp logged
std::string log_partial;

void collect(enum ggml_log_level, const char* text, void*) {
    std::lock_guard<std::mutex> lock(log_mutex);
    log_partial += text ? text : "";
    size_t nl;
    while ((nl = log_partial.find('\n')) != std::string::npos) {
        log_lines.push_back(log_partial.substr(0, nl));
        log_partial.erase(0, nl + 1);
        if (log_lines.size() > 200) log_lines.pop_front();
    }
}

void clear_log() {
    std::lock_guard<std::mutex> lock(log_mutex);
    log_lines.clear();
    log_partial.clear();
}

// Writes the held-back log to stderr; returns its last non-blank line.
std::string spill_log() {
    std::lock_guard<std::mutex> lock(log_mutex);
    std::string last = "no message";
    for (const auto& line : log_lines) {
        std::fputs((line + "\n").c_str(), stderr);
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line.substr(line.find_first_not_of(" \t\r"));
    }
    std::fflush(stderr);
    return last;
}

ggml_type kv_type(const std::string& name) {
    if (name == "f32") return GGML_TYPE_F32;
    if (name == "f16") return GGML_TYPE_F16;
    throw value_error("unknown kv_cache type '" + name + "' in the manifest");
}

llama_flash_attn_type flash_attn(const std::string& name) {
    if (name == "auto") return LLAMA_FLASH_ATTN_TYPE_AUTO;
    if (name == "off") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (name == "on") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
    throw value_error("unknown flash_attn setting '" + name + "' in the manifest");
}

class LlamaCppLM : public LanguageModel {
public:
    LlamaCppLM(const std::string& path, int max_context, const std::string& kv, const std::string& fa, int threads)
        : max_context_(max_context) {
        static bool initialised = false;
        if (!initialised) {
            llama_log_set(collect, nullptr);
            llama_backend_init();
            initialised = true;
        }
        clear_log();
        llama_model_params mparams = llama_model_default_params();
        model_ = llama_model_load_from_file(path.c_str(), mparams);
        if (!model_) throw value_error("llama.cpp cannot load " + path + ": " + spill_log());
        llama_context_params cparams = llama_context_default_params();
        cparams.n_ctx = uint32_t(max_context);
        cparams.n_batch = uint32_t(max_context);  // any sequence that fits the context is one llama_decode call
        cparams.n_seq_max = 1;
        cparams.n_threads = cparams.n_threads_batch = threads;
        cparams.type_k = cparams.type_v = kv_type(kv);
        cparams.flash_attn_type = flash_attn(fa);
        cparams.no_perf = true;
        ctx_ = llama_init_from_model(model_, cparams);
        if (!ctx_) {
            std::string why = spill_log();
            llama_model_free(model_);
            throw value_error("llama.cpp cannot create a context for " + path + ": " + why);
        }
        vocab_ = llama_vocab_n_tokens(llama_model_get_vocab(model_));
        memory_ = llama_get_memory(ctx_);
        batch_ = llama_batch_init(max_context, 0, 1);
        for (int i = 0; i < max_context; ++i) {  // one sequence: only tokens and positions change
            batch_.n_seq_id[i] = 1;
            batch_.seq_id[i][0] = 0;
        }
    }

    ~LlamaCppLM() override {
        llama_batch_free(batch_);
        llama_free(ctx_);
        llama_model_free(model_);
    }

    int vocab_size() const override { return vocab_; }
    int max_context() const override { return max_context_; }

    void reset() override {
        llama_memory_clear(memory_, true);
        length_ = 0;
    }

    Logits forward(const std::vector<int>& ids, bool last_only) override {
        Logits out;
        out.vocab = vocab_;
        if (ids.empty()) return out;
        int n = int(ids.size());
        if (length_ + n > max_context_)
            throw value_error("sequence of " + std::to_string(length_ + n) + " tokens exceeds the context of " +
                              std::to_string(max_context_));
        batch_.n_tokens = n;
        for (int i = 0; i < n; ++i) {
            batch_.token[i] = ids[size_t(i)];
            batch_.pos[i] = length_ + i;
            batch_.logits[i] = !last_only;
        }
        batch_.logits[n - 1] = true;
        clear_log();
        int rc = llama_decode(ctx_, batch_);
        if (rc != 0) throw value_error("llama_decode failed (" + std::to_string(rc) + "): " + spill_log());
        length_ += n;
        out.rows = last_only ? 1 : n;
        const float* src = last_only ? llama_get_logits_ith(ctx_, -1) : llama_get_logits(ctx_);
        out.data.assign(src, src + size_t(out.rows) * size_t(vocab_));
        return out;
    }

private:
    int max_context_;
    int vocab_ = 0;
    int length_ = 0;
    llama_model* model_ = nullptr;
    llama_context* ctx_ = nullptr;
    llama_memory_t memory_ = nullptr;
    llama_batch batch_{};
};

}  // namespace

std::unique_ptr<LanguageModel> open_llamacpp(const std::string& folder, const Json& runtime, int threads) {
    std::string file = runtime_string(runtime, "model_file", "");
    if (file.empty()) throw value_error("the manifest's runtime names no model_file");
    long long context = runtime_int(runtime, "max_context");
    if (context < 2 || context > (1 << 24)) throw value_error("the manifest's max_context is out of range");
    return std::make_unique<LlamaCppLM>(folder + "/" + file, int(context), runtime_string(runtime, "kv_cache", "f16"),
                                        runtime_string(runtime, "flash_attn", "auto"), threads);
}

}  // namespace edgekit
