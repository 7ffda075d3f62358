// What a backend file gives the table in backends.cpp.
#pragma once

#include <string>
#include <vector>

#include "model.hpp"

namespace edgekit {

using Opener = std::unique_ptr<LanguageModel> (*)(const std::string& folder, const Json& runtime, int threads);

#ifdef EDGEKIT_WITH_LLAMACPP
std::unique_ptr<LanguageModel> open_llamacpp(const std::string& folder, const Json& runtime, int threads);
#endif
#ifdef EDGEKIT_WITH_EXECUTORCH
std::unique_ptr<LanguageModel> open_executorch(const std::string& folder, const Json& runtime, int threads);
// The protocol's ops event of a program: its operators' times from the runtime's event tracer.
Json executorch_ops(const std::string& folder, const Json& runtime, int threads, const std::vector<int>& prompt,
                    int gen);
#endif

std::string runtime_string(const Json& runtime, const std::string& key, const std::string& fallback);
long long runtime_int(const Json& runtime, const std::string& key);

}  // namespace edgekit
