// A minimal JSON value, reader and writer: what the runner protocol needs and no more.
// Numbers keep whether they were written as integers; non-finite doubles are written as
// Python's json module writes them (NaN, Infinity, -Infinity), which the host reads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgekit {

// A copy shares its arrays and objects with the original (set() changes both): values are built,
// then written, never edited through a copy.
class Json {
public:
    enum class Kind { Null, Bool, Int, Double, String, Array, Object };
    using Array = std::vector<Json>;
    using Object = std::vector<std::pair<std::string, Json>>;  // keeps the order fields were set

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool b) : kind_(Kind::Bool), int_(b) {}
    Json(int i) : kind_(Kind::Int), int_(i) {}
    Json(long i) : kind_(Kind::Int), int_(i) {}
    Json(long long i) : kind_(Kind::Int), int_(i) {}
    Json(double d) : kind_(Kind::Double), double_(d) {}
    Json(const char* s) : kind_(Kind::String), string_(s) {}
    Json(std::string s) : kind_(Kind::String), string_(std::move(s)) {}
    Json(Array a) : kind_(Kind::Array), array_(std::make_shared<Array>(std::move(a))) {}
    Json(Object o) : kind_(Kind::Object), object_(std::make_shared<Object>(std::move(o))) {}

    static Json parse(const std::string& text);  // throws std::runtime_error naming the offset
    std::string dump() const;

    Kind kind() const { return kind_; }
    bool is_null() const { return kind_ == Kind::Null; }
    bool is_int() const { return kind_ == Kind::Int; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Double; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_bool() const { return kind_ == Kind::Bool; }

    long long as_int() const;
    double as_double() const;
    bool as_bool() const;
    const std::string& as_string() const;
    const Array& as_array() const;
    const Object& as_object() const;

    const Json* find(const std::string& key) const;  // nullptr where absent (or not an object)
    Json& set(const std::string& key, Json value);   // on an object: replace or append

private:
    Kind kind_ = Kind::Null;
    long long int_ = 0;
    double double_ = 0;
    std::string string_;
    std::shared_ptr<Array> array_;
    std::shared_ptr<Object> object_;
    void write(std::string& out) const;
};

std::string type_name(Json::Kind kind);

}  // namespace edgekit
