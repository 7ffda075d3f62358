#include "protocol.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "model.hpp"

namespace edgekit {

namespace {

bool is_count(const Json& v, long long least) { return v.is_int() && v.as_int() >= least && v.as_int() <= 0x7fffffff; }

bool is_ids(const Json& v) {
    if (!v.is_array()) return false;
    for (const auto& t : v.as_array())
        if (!is_count(t, 0)) return false;
    return true;
}

std::vector<int> ids(const Json& v) {
    std::vector<int> out;
    for (const auto& t : v.as_array()) out.push_back(int(t.as_int()));
    return out;
}

[[noreturn]] void refuse(const std::string& key, const Json& value) {
    std::string text = value.dump();
    if (text.size() > 80) text = text.substr(0, 80);
    throw value_error("the request's '" + key + "' is not allowed: " + text);
}

std::string step_name = "request";
char interrupted_line[512];  // the error event an interrupt writes, kept ready for the signal handler

extern "C" void on_interrupt(int) {
    ssize_t ignored = write(1, interrupted_line, std::strlen(interrupted_line));
    (void)ignored;
    _exit(1);
}

}  // namespace

Request parse_request(const std::string& text) {
    Json r;
    try {
        r = Json::parse(text);
    } catch (const std::runtime_error& e) {
        throw RunnerError("JSONDecodeError", e.what());
    }
    if (!r.is_object()) throw value_error("the request is a JSON " + type_name(r.kind()) + ", not an object");
    const Json* protocol = r.find("protocol");
    if (!protocol || !protocol->is_int() || protocol->as_int() != PROTOCOL)
        throw value_error("request speaks protocol " + (protocol ? protocol->dump() : std::string("None")) +
                          ", this runner speaks " + std::to_string(PROTOCOL));
    for (const char* key : {"artifact", "prompt_ids", "gen"})
        if (!r.find(key)) throw value_error(std::string("the request has no '") + key + "'");
    Request out;
    const Json& artifact = *r.find("artifact");
    if (!artifact.is_string() || artifact.as_string().empty()) refuse("artifact", artifact);
    out.artifact = artifact.as_string();
    const Json& prompt = *r.find("prompt_ids");
    if (!is_ids(prompt) || prompt.as_array().empty()) refuse("prompt_ids", prompt);
    out.prompt_ids = ids(prompt);
    const Json& gen = *r.find("gen");
    if (!is_count(gen, 1)) refuse("gen", gen);
    out.gen = int(gen.as_int());
    if (const Json* v = r.find("threads")) {
        if (!v->is_null() && !is_count(*v, 1)) refuse("threads", *v);
        out.threads = v->is_null() ? 0 : int(v->as_int());
    }
    if (const Json* v = r.find("warmup")) {
        if (!is_count(*v, 0)) refuse("warmup", *v);
        out.warmup = int(v->as_int());
    }
    if (const Json* v = r.find("runs")) {
        if (!is_count(*v, 1)) refuse("runs", *v);
        out.runs = int(v->as_int());
    }
    if (const Json* v = r.find("eval_ids")) {
        if (!is_ids(*v)) refuse("eval_ids", *v);
        out.eval_ids = ids(*v);
        out.with_eval = !out.eval_ids.empty();
    }
    if (const Json* v = r.find("window")) {
        if (!is_count(*v, 1)) refuse("window", *v);
        out.window = int(v->as_int());
    }
    if (const Json* v = r.find("ref_topk")) {
        if (!v->is_array()) refuse("ref_topk", *v);
        for (const auto& row : v->as_array()) {
            if (!is_ids(row)) refuse("ref_topk", *v);
            out.ref_topk.push_back(ids(row));
        }
        out.with_topk = true;
    }
    if (const Json* v = r.find("ops")) {
        if (!v->is_bool()) refuse("ops", *v);
        out.ops = v->as_bool();
    }
    if (const Json* v = r.find("duration_s")) {
        if (!v->is_number() || !(v->as_double() > 0 && v->as_double() <= MAX_DURATION_S)) refuse("duration_s", *v);
        out.duration_s = v->as_double();
    }
    if (out.with_eval && !r.find("window")) throw value_error("the request has 'eval_ids' but no 'window'");
    return out;
}

void emit(const std::string& name, const Json& fields) {
    Json event = Json(Json::Object{});
    event.set("event", name);
    for (const auto& kv : fields.as_object()) event.set(kv.first, kv.second);
    std::string line = event.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

void set_step(const std::string& step) {
    step_name = step;
    Json event = Json(Json::Object{});
    event.set("event", "error");
    event.set("step", step);
    event.set("message", "interrupted");
    std::string line = event.dump() + "\n";
    std::snprintf(interrupted_line, sizeof interrupted_line, "%s", line.c_str());
}

const std::string& current_step() { return step_name; }

void install_interrupt_handler() {
    set_step(step_name);
    std::signal(SIGINT, on_interrupt);
}

}  // namespace edgekit
