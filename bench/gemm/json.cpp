#include "json.h"

#include <cmath>
#include <cstdio>

namespace bench {
namespace {

void escape_to(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
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

Json& Json::operator[](const std::string& key) {
  if (type_ == Type::kNull) type_ = Type::kObject;
  for (auto& m : members_)
    if (m.first == key) return m.second;
  members_.emplace_back(key, Json());
  return members_.back().second;
}

void Json::push_back(Json v) {
  if (type_ == Type::kNull) type_ = Type::kArray;
  items_.push_back(std::move(v));
}

std::string Json::dump() const {
  std::string out;
  dump_to(out, 0);
  out += '\n';
  return out;
}

void Json::dump_to(std::string& out, int depth) const {
  const std::string pad(2 * (depth + 1), ' '), end_pad(2 * depth, ' ');
  switch (type_) {
    case Type::kNull: out += "null"; break;
    case Type::kBool: out += bool_ ? "true" : "false"; break;
    case Type::kNumber: {
      if (!std::isfinite(num_)) {
        out += "null";
      } else if (num_ == std::floor(num_) && std::fabs(num_) < 1e15) {
        out += std::to_string(int64_t(num_));
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", num_);
        out += buf;
      }
      break;
    }
    case Type::kString: escape_to(out, str_); break;
    case Type::kArray:
      if (items_.empty()) {
        out += "[]";
        break;
      }
      out += "[\n";
      for (size_t i = 0; i < items_.size(); ++i) {
        out += pad;
        items_[i].dump_to(out, depth + 1);
        out += i + 1 < items_.size() ? ",\n" : "\n";
      }
      out += end_pad + "]";
      break;
    case Type::kObject:
      if (members_.empty()) {
        out += "{}";
        break;
      }
      out += "{\n";
      for (size_t i = 0; i < members_.size(); ++i) {
        out += pad;
        escape_to(out, members_[i].first);
        out += ": ";
        members_[i].second.dump_to(out, depth + 1);
        out += i + 1 < members_.size() ? ",\n" : "\n";
      }
      out += end_pad + "}";
      break;
  }
}

}  // namespace bench
