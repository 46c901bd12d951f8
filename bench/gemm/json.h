// A small JSON value that keeps object keys in insertion order, enough to write gemm.json.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bench {

class Json {
 public:
  Json() = default;  // null
  Json(bool v) : type_(Type::kBool), bool_(v) {}
  Json(int v) : type_(Type::kNumber), num_(v) {}
  Json(int64_t v) : type_(Type::kNumber), num_(double(v)) {}
  Json(double v) : type_(Type::kNumber), num_(v) {}
  Json(const char* v) : type_(Type::kString), str_(v) {}
  Json(std::string v) : type_(Type::kString), str_(std::move(v)) {}

  static Json object() { return Json(Type::kObject); }
  static Json array() { return Json(Type::kArray); }

  // Object member (inserted on first use; the value becomes an object if it was null).
  Json& operator[](const std::string& key);
  // Array append (the value becomes an array if it was null).
  void push_back(Json v);

  // Pretty-printed with two-space indentation; NaN and infinities are written as null.
  std::string dump() const;

 private:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  explicit Json(Type t) : type_(t) {}
  void dump_to(std::string& out, int depth) const;

  Type type_ = Type::kNull;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

}  // namespace bench
