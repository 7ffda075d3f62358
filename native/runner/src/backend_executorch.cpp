// ExecuTorch backend: a .pte program (and its .ptd data file) through ExecuTorch's Module API, called
// as edgekit/runtime/executorch.py calls it: forward(tokens[1, n], input_pos) with the KV cache inside
// the program, at most max_prefill tokens a call, input_pos read both ways by the program (every
// token's position: the last rows' logits; the start position alone: every position's). The LLM
// custom ops the program names are executorch_llama_ops.cpp's; the other kernels and the XNNPACK
// delegate are the wheel's libraries.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/runtime/core/event_tracer.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/extension/tensor/tensor.h>

#include "backends.hpp"

namespace executorch::extension::threadpool {  // libexecutorch_threadpool.so; the wheel ships no header
class ThreadPool {
public:
    size_t get_thread_count() const;
    bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace edgekit {

namespace {

using executorch::aten::ScalarType;
using executorch::extension::Module;
using executorch::runtime::Error;

std::string describe(Error e) {
    switch (e) {
        case Error::OperatorMissing: return "OperatorMissing: the program calls an operator this runner has no kernel for";
        case Error::InvalidProgram: return "InvalidProgram";
        case Error::InvalidExternalData: return "InvalidExternalData: the .ptd data file does not match the program";
        case Error::NotFound: return "NotFound";
        case Error::AccessFailed: return "AccessFailed: a file cannot be read";
        case Error::MemoryAllocationFailed: return "MemoryAllocationFailed";
        case Error::InvalidArgument: return "InvalidArgument";
        case Error::DelegateInvalidCompatibility: return "DelegateInvalidCompatibility";
        default: return "ExecuTorch error " + std::to_string(int(e));
    }
}

template <typename T>
T little_endian(const unsigned char* p) {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= T(p[i]) << (8 * i);
    return v;
}

// Refuses a file that is not a whole ExecuTorch program before the runtime reads it (on some malformed
// headers the runtime aborts instead of failing), as edgekit/runtime/executorch.py's check_program: the
// identifier ETnn, and an extended header eh00 whose sizes fit the file.
void check_program(const std::string& path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) throw RunnerError("FileNotFoundError", "cannot read " + path);
    const long long size = f.tellg();
    unsigned char head[40] = {};
    f.seekg(0);
    f.read(reinterpret_cast<char*>(head), sizeof head);
    const long long got = f.gcount();
    std::string name = path.substr(path.find_last_of('/') + 1);
    if (got < 8 || head[4] != 'E' || head[5] != 'T' || !std::isdigit(head[6]) || !std::isdigit(head[7]))
        throw value_error(name + " is not an ExecuTorch program (no ETnn identifier in its header)");
    if (got >= 32 && std::memcmp(head + 8, "eh00", 4) == 0) {
        auto length = little_endian<uint32_t>(head + 12);
        auto program_size = little_endian<uint64_t>(head + 16), segment_base = little_endian<uint64_t>(head + 24);
        uint64_t segments = length >= 32 && got >= 40 ? little_endian<uint64_t>(head + 32) : 0;
        if (program_size > uint64_t(size) || segment_base + segments > uint64_t(size))
            throw value_error(name + " is truncated or corrupt: its header describes " +
                              std::to_string(std::max(program_size, segment_base + segments)) + " bytes, the file has " +
                              std::to_string(size));
    }
}

std::vector<int32_t> dims(const executorch::runtime::TensorInfo& info) {
    auto s = info.sizes();
    return std::vector<int32_t>(s.begin(), s.end());
}


// Per-operator times (the protocol's ops event) without an ETDump: an event tracer that sums the
// runtime's own profiling events by name as they end, into the phase (prefill or decode) the driver
// sets; "Method::execute" gives each phase's total. The same events ExecuTorch's ETDump records:
// operators outside the delegate ("native_call_NAME", custom ops by name) and XNNPACK's own operators
// (logged by its profiler with their "#N" index, dropped here).
class OpsTracer : public executorch::runtime::EventTracer {
public:
    struct Row {
        double decode_ms = 0, prefill_ms = 0;
        long decode_calls = 0, prefill_calls = 0;
    };
    const char* phase = nullptr;  // "prefill", "decode", or nullptr: not counted (the warm-up)
    std::map<std::pair<std::string, std::string>, Row> rows;  // (op, kind) -> its sums
    double prefill_ms = 0, decode_ms = 0;

    void create_event_block(const char*) override {}
    executorch::runtime::EventTracerEntry start_profiling(const char* name, executorch::runtime::ChainID chain,
                                                          executorch::runtime::DebugHandle handle) override {
        names_.emplace_back(name ? name : "");
        executorch::runtime::EventTracerEntry e{};
        e.event_id = int64_t(names_.size() - 1);
        e.chain_id = chain;
        e.debug_handle = handle;
        e.start_time = et_pal_current_ticks();
        e.delegate_event_id_type = executorch::runtime::DelegateDebugIdType::kNone;
        return e;
    }
    executorch::runtime::EventTracerEntry start_profiling_delegate(
            const char* name, executorch::runtime::DelegateDebugIntId) override {
        auto e = start_profiling(name, executorch::runtime::kUnsetChainId, executorch::runtime::kUnsetDebugHandle);
        e.delegate_event_id_type = executorch::runtime::DelegateDebugIdType::kStr;
        return e;
    }
    void end_profiling_delegate(executorch::runtime::EventTracerEntry e, const void*, size_t) override {
        add(names_[size_t(e.event_id)], "delegate", e.start_time, et_pal_current_ticks());
    }
    void log_profiling_delegate(const char* name, executorch::runtime::DelegateDebugIntId, et_timestamp_t start,
                                et_timestamp_t end, const void*, size_t) override {
        if (name) add(name, "delegate", start, end);
    }
    void end_profiling(executorch::runtime::EventTracerEntry e) override {
        add(names_[size_t(e.event_id)], "operator", e.start_time, et_pal_current_ticks());
    }
    void track_allocation(executorch::runtime::AllocatorID, size_t) override {}
    executorch::runtime::AllocatorID track_allocator(const char*) override { return 0; }
    executorch::runtime::Result<bool> log_evalue(const executorch::runtime::EValue&,
                                                 executorch::runtime::LoggedEValueType) override { return false; }
    executorch::runtime::Result<bool> log_intermediate_output_delegate(
            const char*, executorch::runtime::DelegateDebugIntId, const executorch::aten::Tensor&) override {
        return false;
    }
    executorch::runtime::Result<bool> log_intermediate_output_delegate(
            const char*, executorch::runtime::DelegateDebugIntId,
            const executorch::runtime::ArrayRef<executorch::aten::Tensor>) override {
        return false;
    }
    executorch::runtime::Result<bool> log_intermediate_output_delegate(
            const char*, executorch::runtime::DelegateDebugIntId, const int&) override { return false; }
    executorch::runtime::Result<bool> log_intermediate_output_delegate(
            const char*, executorch::runtime::DelegateDebugIntId, const bool&) override { return false; }
    executorch::runtime::Result<bool> log_intermediate_output_delegate(
            const char*, executorch::runtime::DelegateDebugIntId, const double&) override { return false; }
    void set_delegation_intermediate_output_filter(executorch::runtime::EventTracerFilterBase*) override {}

private:
    std::vector<std::string> names_;

    void add(const std::string& name, const char* kind, et_timestamp_t start, et_timestamp_t end) {
        if (names_.size() > 100000) names_.clear();  // (ids are only read back at the event's end)
        if (!phase || name.empty() || name == "OPERATOR_CALL" || name == "DELEGATE_CALL") return;
        auto ratio = et_pal_ticks_to_ns_multiplier();
        double ms = double(end - start) * double(ratio.numerator) / double(ratio.denominator) / 1e6;
        bool decode = std::strcmp(phase, "decode") == 0;
        if (name == "Method::execute") {
            (decode ? decode_ms : prefill_ms) += ms;
            return;
        }
        std::string op = name;
        if (std::strcmp(kind, "delegate") == 0) {  // "NAME #N" -> "NAME" (no regex: this runs inside the timed call)
            size_t hash = op.rfind(" #");
            if (hash != std::string::npos && hash + 2 < op.size() &&
                op.find_first_not_of("0123456789", hash + 2) == std::string::npos)
                op.resize(hash);
        } else if (op.rfind("native_call_", 0) == 0) {
            op = op.substr(12);
        }
        Row& row = rows[{op, kind}];
        if (decode) {
            row.decode_ms += ms;
            ++row.decode_calls;
        } else {
            row.prefill_ms += ms;
            ++row.prefill_calls;
        }
    }
};

class ExecuTorchLM : public LanguageModel {
public:
    ExecuTorchLM(const std::string& program, const std::string& data, int max_context, int max_prefill, int threads,
                 std::unique_ptr<executorch::runtime::EventTracer> tracer = nullptr)
        : max_context_(max_context), max_prefill_(max_prefill) {
        check_program(program);
        auto* pool = executorch::extension::threadpool::get_threadpool();
        if (pool && threads > 0 && pool->get_thread_count() != size_t(threads)) pool->_unsafe_reset_threadpool(uint32_t(threads));
        module_ = data.empty() ? std::make_unique<Module>(program, Module::LoadMode::File, std::move(tracer))
                               : std::make_unique<Module>(program, data, Module::LoadMode::File, std::move(tracer));
        Error e = module_->load_method("forward");
        if (e != Error::Ok) throw value_error("ExecuTorch cannot load " + program + "'s forward (" + describe(e) + ")");
        auto meta = module_->method_meta("forward");
        if (!meta.ok()) throw value_error("ExecuTorch cannot read " + program + "'s forward metadata");
        auto out = meta->output_tensor_meta(0);
        auto pos = meta->input_tensor_meta(1);
        if (!out.ok() || !pos.ok()) throw value_error(program + "'s forward is not forward(tokens, input_pos) -> logits");
        std::vector<int32_t> out_sizes = dims(out.get());
        vocab_ = out_sizes.back();
        selects_rows_ = meta->num_inputs() == 3;
        last_position_only_ = out_sizes.size() == 2;  // [1, vocab]
        rows_by_positions_ = !selects_rows_ && dims(pos.get())[0] > 1;
        max_rows_ = rows_by_positions_ && out_sizes.size() == 3 ? out_sizes[1] : max_prefill_;
    }

    int vocab_size() const override { return vocab_; }
    int max_context() const override { return max_context_; }
    void reset() override { length_ = 0; }  // cache slots past the position are never read

    Logits forward(const std::vector<int>& ids, bool last_only) override {
        Logits out;
        out.vocab = vocab_;
        if (ids.empty()) return out;
        if (length_ + int(ids.size()) > max_context_)
            throw value_error("sequence of " + std::to_string(length_ + int(ids.size())) +
                              " tokens exceeds the context of " + std::to_string(max_context_));
        for (size_t i = 0; i < ids.size(); i += size_t(max_prefill_)) {
            std::vector<int> chunk(ids.begin() + long(i), ids.begin() + long(std::min(ids.size(), i + size_t(max_prefill_))));
            Logits part = step(chunk, length_ + int(i), last_only);
            if (last_only) {
                out.rows = 1;
                out.data.assign(part.row(part.rows - 1), part.row(part.rows - 1) + vocab_);
            } else {
                out.rows += part.rows;
                out.data.insert(out.data.end(), part.data.begin(), part.data.end());
            }
        }
        length_ += int(ids.size());
        return out;
    }

private:
    Logits step(const std::vector<int>& chunk, int position, bool last_only) {
        if (!last_only && int(chunk.size()) > max_rows_) {
            std::vector<int> head(chunk.begin(), chunk.begin() + max_rows_), tail(chunk.begin() + max_rows_, chunk.end());
            Logits a = call(head, position, false), b = call(tail, position + max_rows_, false);
            a.rows += b.rows;
            a.data.insert(a.data.end(), b.data.begin(), b.data.end());
            return a;
        }
        if (last_position_only_ && !last_only && chunk.size() > 1) {
            Logits all;
            all.vocab = vocab_;
            for (size_t i = 0; i < chunk.size(); ++i) {
                Logits one = call({chunk[i]}, position + int(i), true);
                all.rows += 1;
                all.data.insert(all.data.end(), one.data.begin(), one.data.end());
            }
            return all;
        }
        return call(chunk, position, last_only);
    }

    Logits call(const std::vector<int>& chunk, int position, bool last_only) {
        const int n = int(chunk.size());
        std::vector<int64_t> tokens(chunk.begin(), chunk.end()), positions, rows;
        const bool one_row = rows_by_positions_ && last_only;  // every token's position: the last rows only
        if (one_row)
            for (int i = 0; i < n; ++i) positions.push_back(position + i);
        else
            positions.push_back(position);
        std::vector<executorch::runtime::EValue> inputs;
        auto t = executorch::extension::from_blob(tokens.data(), {1, n}, ScalarType::Long);
        auto p = executorch::extension::from_blob(positions.data(), {int(positions.size())}, ScalarType::Long);
        executorch::extension::TensorPtr r;
        inputs.emplace_back(t);
        inputs.emplace_back(p);
        if (selects_rows_) {
            if (last_only) rows.push_back(n - 1);
            else for (int i = 0; i < n; ++i) rows.push_back(i);
            r = executorch::extension::from_blob(rows.data(), {int(rows.size())}, ScalarType::Long);
            inputs.emplace_back(r);
        }
        auto result = module_->execute("forward", inputs);
        if (!result.ok()) throw value_error("ExecuTorch forward failed (" + describe(result.error()) + ")");
        const auto& logits = result.get()[0].toTensor();
        if (logits.scalar_type() != ScalarType::Float) throw value_error("the program's logits are not float32");
        Logits out;
        out.vocab = vocab_;
        out.rows = last_position_only_ ? int(logits.size(0)) : int(logits.size(1));
        const float* data = logits.const_data_ptr<float>();
        out.data.assign(data, data + size_t(out.rows) * size_t(vocab_));
        return out;
    }

    int max_context_, max_prefill_;
    int vocab_ = 0, max_rows_ = 0, length_ = 0;
    bool selects_rows_ = false, last_position_only_ = false, rows_by_positions_ = false;
    std::unique_ptr<Module> module_;
};

}  // namespace

std::unique_ptr<LanguageModel> open_executorch_traced(const std::string& folder, const Json& runtime, int threads,
                                                      std::unique_ptr<executorch::runtime::EventTracer> tracer);

std::unique_ptr<LanguageModel> open_executorch(const std::string& folder, const Json& runtime, int threads) {
    return open_executorch_traced(folder, runtime, threads, nullptr);
}

Json executorch_ops(const std::string& folder, const Json& runtime, int threads, const std::vector<int>& prompt,
                    int gen) {
    auto owned = std::make_unique<OpsTracer>();
    OpsTracer* tracer = owned.get();
    auto lm = open_executorch_traced(folder, runtime, threads, std::move(owned));
    int steps = std::min(gen, lm->max_context() - int(prompt.size())) - 1;
    for (int pass = 0; pass < 2; ++pass) {  // a warm-up generation, then the profiled one
        lm->reset();
        tracer->phase = pass ? "prefill" : nullptr;
        Logits logits = lm->forward(prompt, true);
        tracer->phase = pass ? "decode" : nullptr;
        for (int i = 0; i < steps; ++i) {
            const float* row = logits.row(logits.rows - 1);
            int token = int(std::max_element(row, row + logits.vocab) - row);
            logits = lm->forward({token}, true);
        }
    }
    tracer->phase = nullptr;
    int per_step = std::max(steps, 1);
    double step_ms = tracer->decode_ms / per_step, prefill_ms = tracer->prefill_ms;
    std::vector<std::pair<double, Json>> ranked;
    for (const auto& kv : tracer->rows) {
        const auto& r = kv.second;
        Json row = Json(Json::Object{});
        row.set("op", kv.first.first);
        row.set("kind", kv.first.second);
        row.set("calls", std::round(double(r.decode_calls) / per_step * 100) / 100);
        row.set("decode_ms", std::round(r.decode_ms / per_step * 1e4) / 1e4);
        row.set("prefill_calls", r.prefill_calls);
        row.set("prefill_ms", std::round(r.prefill_ms * 1e4) / 1e4);
        double weight = std::max(step_ms > 0 ? r.decode_ms / per_step / step_ms : 0.0,
                                 prefill_ms > 0 ? r.prefill_ms / prefill_ms : 0.0);
        ranked.emplace_back(weight, row);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    Json::Array rows;
    for (size_t i = 0; i < ranked.size() && i < 15; ++i) rows.push_back(ranked[i].second);
    Json out = Json(Json::Object{});
    out.set("source", "executorch event tracer");
    out.set("prefill_tokens", int(prompt.size()));
    out.set("decode_steps", steps);
    out.set("prefill_ms", std::round(prefill_ms * 1e4) / 1e4);
    out.set("decode_step_ms", std::round(step_ms * 1e4) / 1e4);
    out.set("operators", int(tracer->rows.size()));
    out.set("rows", Json(rows));
    return out;
}

std::unique_ptr<LanguageModel> open_executorch_traced(const std::string& folder, const Json& runtime, int threads,
                                                      std::unique_ptr<executorch::runtime::EventTracer> tracer) {
    std::string file = runtime_string(runtime, "model_file", "");
    if (file.empty()) throw value_error("the manifest's runtime names no model_file");
    std::string data = runtime_string(runtime, "data_file", "");
    long long context = runtime_int(runtime, "max_context");
    const Json* prefill = runtime.find("max_prefill");
    long long max_prefill = prefill && prefill->is_int() ? prefill->as_int() : 1;
    if (context < 2 || context > (1 << 24) || max_prefill < 1 || max_prefill > context)
        throw value_error("the manifest's max_context / max_prefill are out of range");
    return std::make_unique<ExecuTorchLM>(folder + "/" + file, data.empty() ? "" : folder + "/" + data, int(context),
                                          int(max_prefill), threads, std::move(tracer));
}

}  // namespace edgekit
