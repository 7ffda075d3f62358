#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace edgekit {

namespace {

class Reader {
public:
    explicit Reader(const std::string& s) : s_(s) {}

    Json document() {
        Json value = read();
        skip();
        if (i_ != s_.size()) fail("extra data");
        return value;
    }

private:
    const std::string& s_;
    size_t i_ = 0;
    int depth_ = 0;  // of nested arrays and objects, bounded so a hostile text cannot exhaust the stack

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error(what + " at character " + std::to_string(i_));
    }
    void skip() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool word(const char* w) {
        size_t n = std::char_traits<char>::length(w);
        if (s_.compare(i_, n, w) != 0) return false;
        i_ += n;
        return true;
    }
    Json read() {
        skip();
        if (i_ >= s_.size()) fail("expecting a value");
        char c = s_[i_];
        if ((c == '{' || c == '[') && ++depth_ > 64) fail("nested too deeply");
        if (c == '{' || c == '[') {
            Json value = c == '{' ? object() : array();
            --depth_;
            return value;
        }
        if (c == '"') return Json(string());
        if (word("null")) return Json();
        if (word("true")) return Json(true);
        if (word("false")) return Json(false);
        if (word("NaN")) return Json(std::nan(""));
        if (word("Infinity")) return Json(HUGE_VAL);
        if (word("-Infinity")) return Json(-HUGE_VAL);
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        fail("expecting a value");
    }
    Json number() {
        size_t start = i_;
        bool integer = true;
        if (s_[i_] == '-') ++i_;
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (c >= '0' && c <= '9') {
                ++i_;
            } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                integer = false;
                ++i_;
            } else {
                break;
            }
        }
        std::string text = s_.substr(start, i_ - start);
        char* end = nullptr;
        if (integer) {
            errno = 0;
            long long v = std::strtoll(text.c_str(), &end, 10);
            if (*end == '\0' && errno == 0 && text != "-") return Json(v);
        }
        double d = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0') fail("malformed number");
        return Json(d);
    }
    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }
    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        ++i_;  // the opening quote
        std::string out;
        while (true) {
            if (i_ >= s_.size()) fail("unterminated string");
            char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) fail("unterminated string");
            char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
                        i_ += 2;
                        unsigned low = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
    Json array() {
        ++i_;
        Json::Array out;
        skip();
        if (i_ < s_.size() && s_[i_] == ']') {
            ++i_;
            return Json(std::move(out));
        }
        while (true) {
            out.push_back(read());
            skip();
            if (i_ < s_.size() && s_[i_] == ',') {
                ++i_;
            } else if (i_ < s_.size() && s_[i_] == ']') {
                ++i_;
                return Json(std::move(out));
            } else {
                fail("expecting ',' or ']'");
            }
        }
    }
    Json object() {
        ++i_;
        Json out = Json(Json::Object{});
        skip();
        if (i_ < s_.size() && s_[i_] == '}') {
            ++i_;
            return out;
        }
        while (true) {
            skip();
            if (i_ >= s_.size() || s_[i_] != '"') fail("expecting a property name");
            std::string key = string();
            skip();
            if (i_ >= s_.size() || s_[i_] != ':') fail("expecting ':'");
            ++i_;
            out.set(key, read());
            skip();
            if (i_ < s_.size() && s_[i_] == ',') {
                ++i_;
            } else if (i_ < s_.size() && s_[i_] == '}') {
                ++i_;
                return out;
            } else {
                fail("expecting ',' or '}'");
            }
        }
    }
};

void write_string(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
}

}  // namespace

Json Json::parse(const std::string& text) { return Reader(text).document(); }

std::string type_name(Json::Kind kind) {
    switch (kind) {
        case Json::Kind::Null: return "null";
        case Json::Kind::Bool: return "boolean";
        case Json::Kind::Int: return "integer";
        case Json::Kind::Double: return "number";
        case Json::Kind::String: return "string";
        case Json::Kind::Array: return "array";
        case Json::Kind::Object: return "object";
    }
    return "?";
}

long long Json::as_int() const {
    if (kind_ != Kind::Int) throw std::runtime_error("expected an integer, got " + type_name(kind_));
    return int_;
}

double Json::as_double() const {
    if (kind_ == Kind::Int) return double(int_);
    if (kind_ != Kind::Double) throw std::runtime_error("expected a number, got " + type_name(kind_));
    return double_;
}

bool Json::as_bool() const {
    if (kind_ != Kind::Bool) throw std::runtime_error("expected a boolean, got " + type_name(kind_));
    return int_ != 0;
}

const std::string& Json::as_string() const {
    if (kind_ != Kind::String) throw std::runtime_error("expected a string, got " + type_name(kind_));
    return string_;
}

const Json::Array& Json::as_array() const {
    if (kind_ != Kind::Array) throw std::runtime_error("expected an array, got " + type_name(kind_));
    return *array_;
}

const Json::Object& Json::as_object() const {
    if (kind_ != Kind::Object) throw std::runtime_error("expected an object, got " + type_name(kind_));
    return *object_;
}

const Json* Json::find(const std::string& key) const {
    if (kind_ != Kind::Object) return nullptr;
    for (const auto& kv : *object_)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

Json& Json::set(const std::string& key, Json value) {
    if (kind_ != Kind::Object) throw std::runtime_error("set on a " + type_name(kind_));
    for (auto& kv : *object_) {
        if (kv.first == key) {
            kv.second = std::move(value);
            return kv.second;
        }
    }
    object_->emplace_back(key, std::move(value));
    return object_->back().second;
}

std::string Json::dump() const {
    std::string out;
    write(out);
    return out;
}

void Json::write(std::string& out) const {
    switch (kind_) {
        case Kind::Null: out += "null"; return;
        case Kind::Bool: out += int_ ? "true" : "false"; return;
        case Kind::Int: out += std::to_string(int_); return;
        case Kind::Double: {
            if (std::isnan(double_)) {
                out += "NaN";
            } else if (std::isinf(double_)) {
                out += double_ > 0 ? "Infinity" : "-Infinity";
            } else {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.17g", double_);
                std::string s = buf;
                if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // stays a float, as Python writes it
                out += s;
            }
            return;
        }
        case Kind::String: write_string(out, string_); return;
        case Kind::Array: {
            out += '[';
            bool first = true;
            for (const auto& v : *array_) {
                if (!first) out += ", ";
                first = false;
                v.write(out);
            }
            out += ']';
            return;
        }
        case Kind::Object: {
            out += '{';
            bool first = true;
            for (const auto& kv : *object_) {
                if (!first) out += ", ";
                first = false;
                write_string(out, kv.first);
                out += ": ";
                kv.second.write(out);
            }
            out += '}';
            return;
        }
    }
}

}  // namespace edgekit
