// Internal: a small JSON value, parser and writer, just enough for the tuning cache file.
// The parser is strict (RFC 8259 minus \u surrogate pairs beyond the BMP) because a file that does
// not parse is treated as corrupted and rewritten, never half-used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace int8dit::tune {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue boolean(bool b);
  static JsonValue number(double d);
  static JsonValue string(std::string s);
  static JsonValue array();
  static JsonValue object();

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_bool() const { return kind_ == Kind::kBool; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::map<std::string, JsonValue>& members() const { return members_; }

  // Object member or nullptr when absent (or when this is not an object).
  const JsonValue* find(const std::string& key) const;
  void set(const std::string& key, JsonValue v);  // object
  void push(JsonValue v);                          // array

  // Pretty-printed with 2-space indents; object keys sorted (std::map) so files diff cleanly.
  std::string dump() const;

 private:
  void dump_to(std::string* out, int indent) const;

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::map<std::string, JsonValue> members_;
};

// Parse a whole document. On failure returns false and says where in `error`.
bool parse_json(const std::string& text, JsonValue* out, std::string* error);

}  // namespace int8dit::tune
