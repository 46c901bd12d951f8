#include "shapes.h"

#include <fstream>
#include <sstream>

#include "check.h"

namespace bench {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool parse_positive(const std::string& s, int64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 12) return false;
  *out = std::stoll(s);
  return *out > 0;
}

}  // namespace

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"flux-dev", "sd3-medium", "pixart-sigma", "dit-xl-2"};
  return names;
}

std::vector<Shape> load_preset(const std::string& dir, const std::string& preset) {
  const std::string path = dir + "/" + preset + ".csv";
  std::ifstream in(path);
  if (!in)
    throw BenchError("cannot open preset file " + path + ": known presets are flux-dev, sd3-medium, pixart-sigma, " +
                     "dit-xl-2, all (those four), flux2-dev, flux3 (use --shapes-dir if the shape files live elsewhere)");
  std::vector<Shape> shapes;
  std::string line;
  bool header_seen = false;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (!header_seen) {
      if (line.rfind("m,n,k", 0) != 0) throw BenchError(path + ":" + std::to_string(line_no) + ": expected the header m,n,k,layer");
      header_seen = true;
      continue;
    }
    std::stringstream ss(line);
    std::string m, n, k;
    std::getline(ss, m, ',');
    std::getline(ss, n, ',');
    std::getline(ss, k, ',');
    std::string layer;
    std::getline(ss, layer);  // the rest of the line: a layer name may hold commas
    Shape s;
    if (!parse_positive(trim(m), &s.m) || !parse_positive(trim(n), &s.n) || !parse_positive(trim(k), &s.k))
      throw BenchError(path + ":" + std::to_string(line_no) + ": expected positive integers m,n,k, got \"" + line + "\"");
    s.preset = preset;
    s.layer = trim(layer);
    shapes.push_back(s);
  }
  if (shapes.empty()) throw BenchError(path + " holds no shapes");
  return shapes;
}

std::vector<Shape> parse_shape_list(const std::string& list) {
  std::vector<Shape> shapes;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    const size_t x1 = item.find('x'), x2 = item.find('x', x1 == std::string::npos ? 0 : x1 + 1);
    Shape s;
    if (x1 == std::string::npos || x2 == std::string::npos || !parse_positive(item.substr(0, x1), &s.m) ||
        !parse_positive(item.substr(x1 + 1, x2 - x1 - 1), &s.n) || !parse_positive(item.substr(x2 + 1), &s.k))
      throw BenchError("--shapes: \"" + item + "\" is not MxNxK with positive integers (e.g. 4096x3072x3072)");
    s.preset = "custom";
    s.layer = "custom";
    shapes.push_back(s);
  }
  if (shapes.empty()) throw BenchError("--shapes: no shape given (expected MxNxK[,MxNxK...])");
  return shapes;
}

}  // namespace bench
