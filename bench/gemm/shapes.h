// The problem shapes to measure: model presets read from bench/shapes/<preset>.csv (each row names
// the layer it comes from) or an explicit --shapes list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct Shape {
  int64_t m = 0, n = 0, k = 0;
  std::string preset;  // "flux-dev", ... or "custom"
  std::string layer;   // which layer of the model this is
};

// The presets the repository ships, in the order `--preset all` runs them.
const std::vector<std::string>& preset_names();

// Reads <dir>/<preset>.csv: '#' comment lines, a header "m,n,k,layer", then one shape per line.
// Throws BenchError with the file and line on a malformed entry.
std::vector<Shape> load_preset(const std::string& dir, const std::string& preset);

// Parses "MxNxK,MxNxK,..." (the --shapes flag). Throws BenchError naming the bad item.
std::vector<Shape> parse_shape_list(const std::string& list);

}  // namespace bench
