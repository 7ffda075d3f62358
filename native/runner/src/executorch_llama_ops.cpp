// The two ExecuTorch LLM custom ops edgekit's .pte programs call (llama::update_cache.out and
// llama::custom_sdpa.out, as edgekit/targets/executorch_model.py uses them), written here from their
// schemas: the wheel ships their kernels only in a library that links libtorch. Float32 tensors, seq
// at dim 1 ([batch, seq, heads, head_dim]), contiguous; the cache holds max_context slots.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>

namespace edgekit_ops {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::runtime::KernelRuntimeContext;
template <typename T>
using optional = executorch::aten::optional<T>;

// llama::update_cache.out(Tensor value, Tensor(a!) cache, SymInt start_pos, *, Tensor(b!) out):
// value [B, S, H, D] copied into cache[:, start_pos : start_pos + S].
Tensor& update_cache_out(KernelRuntimeContext& ctx, const Tensor& value, Tensor& cache, const int64_t start_pos,
                         Tensor& out) {
    const int64_t seq = value.size(1);
    bool ok = value.dim() == 4 && cache.dim() == 4 && value.size(0) == cache.size(0) &&
              value.size(2) == cache.size(2) && value.size(3) == cache.size(3) &&
              value.element_size() == cache.element_size() && start_pos >= 0 && start_pos + seq <= cache.size(1);
    ET_KERNEL_CHECK(ctx, ok, InvalidArgument, out);
    const size_t token_bytes = size_t(value.size(2) * value.size(3)) * value.element_size();
    const auto* src = static_cast<const uint8_t*>(value.const_data_ptr());
    auto* dst = static_cast<uint8_t*>(cache.mutable_data_ptr());
    for (int64_t b = 0; b < value.size(0); ++b) {
        std::memcpy(dst + size_t(b * cache.size(1) + start_pos) * token_bytes, src + size_t(b * seq) * token_bytes,
                    size_t(seq) * token_bytes);
    }
    return out;
}

// llama::custom_sdpa.out(Tensor query, Tensor key, Tensor value, SymInt start_pos, Tensor? attn_mask,
// float drpout_p, bool is_causal, float? scale, *, Tensor(a!) out): attention of query rows at
// positions start_pos.. over the cache's keys; causal: row i sees keys 0..start_pos + i only (the
// slots after are never read); with a mask ([S, keys], added to the scores), every key. Grouped
// query heads share a key head (heads / key heads each).
Tensor& custom_sdpa_out(KernelRuntimeContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        const int64_t start_pos, const optional<Tensor>& attn_mask, const double dropout_p,
                        const bool is_causal, const optional<double> scale, Tensor& out) {
    (void)dropout_p;
    bool ok = q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && out.dim() == 4 && q.scalar_type() == ScalarType::Float &&
              k.scalar_type() == ScalarType::Float && v.scalar_type() == ScalarType::Float &&
              out.scalar_type() == ScalarType::Float && k.size(2) > 0 && q.size(2) % k.size(2) == 0 &&
              q.size(3) == k.size(3) && v.size(3) == q.size(3) && start_pos >= 0;
    ET_KERNEL_CHECK(ctx, ok, InvalidArgument, out);
    // out is planned at its largest shape: it takes the query's (the next operator reads that shape)
    ET_KERNEL_CHECK(ctx, executorch::runtime::resize_tensor(out, q.sizes()) == executorch::runtime::Error::Ok,
                    InvalidArgument, out);
    const int64_t batch = q.size(0), rows = q.size(1), heads = q.size(2), dim = q.size(3);
    const int64_t slots = k.size(1), kv_heads = k.size(2), group = heads / kv_heads;
    const bool masked = attn_mask.has_value() && attn_mask.value().numel() > 0;
    if (masked) {
        const Tensor& m = attn_mask.value();
        ET_KERNEL_CHECK(ctx, m.dim() == 2 && m.size(0) == rows && m.size(1) == slots &&
                        m.scalar_type() == ScalarType::Float, InvalidArgument, out);
    }
    const float factor = float(scale.has_value() ? scale.value() : 1.0 / std::sqrt(double(dim)));
    const float* qd = q.const_data_ptr<float>();
    const float* kd = k.const_data_ptr<float>();
    const float* vd = v.const_data_ptr<float>();
    const float* md = masked ? attn_mask.value().const_data_ptr<float>() : nullptr;
    float* od = out.mutable_data_ptr<float>();
    std::vector<float> scores(static_cast<size_t>(slots));
    for (int64_t b = 0; b < batch; ++b) {
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t keys = is_causal ? std::min(start_pos + i + 1, slots) : slots;
            for (int64_t h = 0; h < heads; ++h) {
                const int64_t kh = h / group;
                const float* qrow = qd + ((b * rows + i) * heads + h) * dim;
                float top = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j < keys; ++j) {
                    const float* krow = kd + ((b * slots + j) * kv_heads + kh) * dim;
                    float s = 0;
                    for (int64_t d = 0; d < dim; ++d) s += qrow[d] * krow[d];
                    s *= factor;
                    if (md) s += md[i * slots + j];
                    scores[size_t(j)] = s;
                    top = std::max(top, s);
                }
                float* orow = od + ((b * rows + i) * heads + h) * dim;
                for (int64_t d = 0; d < dim; ++d) orow[d] = 0;
                float sum = 0;
                for (int64_t j = 0; j < keys; ++j) {
                    const float p = top == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(scores[size_t(j)] - top);
                    sum += p;
                    if (p == 0.f) continue;  // a masked slot: its value (maybe never written) is not read
                    const float* vrow = vd + ((b * slots + j) * kv_heads + kh) * dim;
                    for (int64_t d = 0; d < dim; ++d) orow[d] += p * vrow[d];
                }
                if (sum > 0)
                    for (int64_t d = 0; d < dim; ++d) orow[d] /= sum;
            }
        }
    }
    return out;
}

}  // namespace edgekit_ops

EXECUTORCH_LIBRARY(llama, "update_cache.out", edgekit_ops::update_cache_out);
EXECUTORCH_LIBRARY(llama, "custom_sdpa.out", edgekit_ops::custom_sdpa_out);
