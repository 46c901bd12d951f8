// `int8dit tune`: offline tuning of the GEMM configurations for a model's linear-layer shapes
// (docs/tuning.md). Fills the tuning cache that `INT8DIT_TUNE=cache` (or =1) then uses.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "int8dit/device.h"
#include "int8dit/tune.h"

namespace {

// `all`: the benchmark's four-model set (bench/gemm/shapes.cpp: preset_names). The larger models' presets
// are tuned by name only.
constexpr const char* kPresets[] = {"flux-dev", "sd3-medium", "pixart-sigma", "dit-xl-2"};
constexpr const char* kNamedOnlyPresets[] = {"flux2-dev", "flux3"};

const char* kHelp = R"(usage: int8dit tune (--preset NAME[,NAME...] | --shapes-file FILE) [options]

Times every GEMM configuration that can run each shape on this GPU, keeps the fastest in the tuning
cache, and prints the choice and its gain over the heuristic. Use the cache afterwards with
INT8DIT_TUNE=cache (or INT8DIT_TUNE=1, which also tunes new shapes on first use). docs/tuning.md.

  --preset NAME       flux-dev, sd3-medium, pixart-sigma, dit-xl-2, or all (those four); flux2-dev
                      (FLUX.2-dev) and flux3 (FLUX.3), by name only; a comma-separated list is ok
  --shapes-file FILE  lines "m,n,k[,layer]"; '#' starts a comment; an "m,n,k,..." header is skipped
  --shapes-dir DIR    where <preset>.csv live (default: $INT8DIT_SHAPES_DIR, else bench/shapes of the
                      source tree this program was built from)
  --out-type T        bf16 (default), fp16, fp32 or int32
  --no-bias           tune the GEMM without a bias (default: with a bias, as nn.Linear)
  --retune            time again shapes the cache already holds
  --runs N            timed runs per candidate, median kept (default 30)
  --warmup N          untimed runs per candidate (default 5)
  --help

The cache file is $INT8DIT_CACHE, else ~/.cache/int8dit/tune-<gpu>-<sms>sm.json.
)";

struct Shape {
  int64_t m = 0, n = 0, k = 0;
  std::string source;  // preset name or file
  std::string layer;
};

struct Args {
  std::vector<std::string> presets;
  std::string shapes_file;
  std::string shapes_dir;
  int8dit::DType out = int8dit::DType::kBF16;
  bool bias = true;
  int8dit::TuneOptions tune;
};

struct UsageError {
  std::string message;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool parse_positive(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::stoll(s);
  return *out > 0;
}

int parse_count(const std::string& flag, const std::string& v, int lo) {
  int64_t x = 0;
  if (!(v == "0" && lo == 0) && (!parse_positive(v, &x) || x < lo || x > 100000))
    throw UsageError{flag + " " + v + ": expected an integer >= " + std::to_string(lo)};
  return static_cast<int>(x);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!trim(item).empty()) out.push_back(trim(item));
  return out;
}

// The preset files are the GEMM benchmark's (bench/shapes/<preset>.csv), found in the source tree
// this program was built from: CMake compiles this file by its absolute path, so __FILE__ is
// <root>/tools/int8dit/cmd_tune.cpp.
std::string default_shapes_dir() {
  if (const char* env = std::getenv("INT8DIT_SHAPES_DIR"); env && *env) return env;
  const std::string self = __FILE__;
  const std::string tail = "tools/int8dit/cmd_tune.cpp";
  if (self.size() >= tail.size() && self.compare(self.size() - tail.size(), tail.size(), tail) == 0)
    return self.substr(0, self.size() - tail.size()) + "bench/shapes";
  return "bench/shapes";
}

// "m,n,k[,layer]" lines; '#' comments; an optional header starting with "m,n,k".
std::vector<Shape> read_shapes(const std::string& path, const std::string& source) {
  std::ifstream in(path);
  if (!in) throw UsageError{"cannot open " + path + " (give --shapes-dir DIR or set INT8DIT_SHAPES_DIR)"};
  std::vector<Shape> shapes;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    line = trim(line.substr(0, line.find('#')));
    if (line.empty() || line.rfind("m,n,k", 0) == 0) continue;
    std::stringstream ss(line);
    std::string m, n, k, layer;
    std::getline(ss, m, ',');
    std::getline(ss, n, ',');
    std::getline(ss, k, ',');
    std::getline(ss, layer);
    Shape s;
    if (!parse_positive(trim(m), &s.m) || !parse_positive(trim(n), &s.n) || !parse_positive(trim(k), &s.k))
      throw UsageError{path + ":" + std::to_string(line_no) + ": expected \"m,n,k[,layer]\" with positive integers, got \"" +
                       line + "\""};
    s.source = source;
    s.layer = trim(layer);
    shapes.push_back(s);
  }
  if (shapes.empty()) throw UsageError{path + " holds no shapes"};
  return shapes;
}

Args parse_args(const std::vector<std::string>& argv) {
  Args a;
  a.shapes_dir = default_shapes_dir();
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argv.size()) throw UsageError{flag + " needs a value"};
      return argv[++i];
    };
    if (flag == "--preset") {
      for (const std::string& p : split_commas(value())) {
        if (p == "all") {
          a.presets.insert(a.presets.end(), std::begin(kPresets), std::end(kPresets));
          continue;
        }
        bool known = false;
        for (const char* k : kPresets) known |= p == k;
        for (const char* k : kNamedOnlyPresets) known |= p == k;
        if (!known)
          throw UsageError{"unknown preset \"" + p + "\": use flux-dev, sd3-medium, pixart-sigma, dit-xl-2, all, flux2-dev or flux3"};
        a.presets.push_back(p);
      }
    } else if (flag == "--shapes-file") {
      a.shapes_file = value();
    } else if (flag == "--shapes-dir") {
      a.shapes_dir = value();
    } else if (flag == "--out-type") {
      const std::string t = value();
      if (t == "bf16") a.out = int8dit::DType::kBF16;
      else if (t == "fp16") a.out = int8dit::DType::kFP16;
      else if (t == "fp32") a.out = int8dit::DType::kFP32;
      else if (t == "int32") a.out = int8dit::DType::kInt32;
      else throw UsageError{"--out-type " + t + ": use bf16, fp16, fp32 or int32"};
    } else if (flag == "--no-bias") {
      a.bias = false;
    } else if (flag == "--retune") {
      a.tune.retune = true;
    } else if (flag == "--runs") {
      a.tune.timed_runs = parse_count(flag, value(), 1);
    } else if (flag == "--warmup") {
      a.tune.warmup_runs = parse_count(flag, value(), 0);
    } else {
      throw UsageError{"unknown option " + flag};
    }
  }
  if (a.presets.empty() && a.shapes_file.empty()) throw UsageError{"give --preset NAME or --shapes-file FILE"};
  return a;
}

// Progress on stderr: a redrawn bar on a terminal, one line per shape otherwise (logs, CI).
class ProgressBar {
 public:
  explicit ProgressBar(size_t shapes) : shapes_(shapes), tty_(isatty(fileno(stderr))), start_(Clock::now()) {}

  void update(size_t shape_index, int done, int total, const Shape& s) {
    if (!tty_) return;
    const double fraction = (static_cast<double>(shape_index) + (total > 0 ? double(done) / total : 0)) / double(shapes_);
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    const double elapsed = seconds();
    const double eta = fraction > 0.01 ? elapsed / fraction - elapsed : 0;
    std::fprintf(stderr, "\r[%s%s] %3.0f%%  shape %zu/%zu  %lldx%lldx%lld  candidate %d/%d  %.0fs, ~%.0fs left   ",
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), 100 * fraction,
                 shape_index + 1, shapes_, (long long)s.m, (long long)s.n, (long long)s.k, done, total, elapsed, eta);
    std::fflush(stderr);
  }
  void shape_done(size_t shape_index, const Shape& s) {
    if (tty_) return;
    std::fprintf(stderr, "tuned %zu/%zu: %lldx%lldx%lld (%.1fs)\n", shape_index + 1, shapes_, (long long)s.m,
                 (long long)s.n, (long long)s.k, seconds());
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 110, "");
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  size_t shapes_;
  bool tty_;
  Clock::time_point start_;
};

int run(const Args& a) {
  std::vector<Shape> shapes;
  for (const std::string& p : a.presets)
    for (Shape& s : read_shapes(a.shapes_dir + "/" + p + ".csv", p)) shapes.push_back(s);
  if (!a.shapes_file.empty())
    for (Shape& s : read_shapes(a.shapes_file, a.shapes_file)) shapes.push_back(s);

  // Shapes that share a key (same M bucket, N, K) are tuned once.
  std::vector<Shape> unique;
  std::set<std::tuple<int64_t, int64_t, int64_t>> seen;
  for (const Shape& s : shapes)
    if (seen.insert({int8dit::m_bucket(s.m).hi, s.n, s.k}).second) unique.push_back(s);

  int8dit::DeviceInfo dev;
  int8dit::Status st = int8dit::current_device(&dev);
  if (!st.ok()) {
    std::fprintf(stderr, "int8dit tune: %s\n", st.to_string().c_str());
    return 1;
  }
  std::string cache;
  st = int8dit::tune_cache_path(&cache);
  if (!st.ok()) {
    std::fprintf(stderr, "int8dit tune: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("tuning %zu shapes (%s output%s) on %s, %d SMs; cache %s\n", unique.size(), int8dit::to_string(a.out),
              a.bias && a.out != int8dit::DType::kInt32 ? ", with bias" : "", dev.name.c_str(), dev.sm_count,
              cache.c_str());
  std::printf("%-13s %6s %6s %6s %7s  %-40s %9s  %-40s %9s  %6s\n", "source", "M", "N", "K", "tuned@M", "chosen",
              "us", "heuristic", "us", "gain");

  ProgressBar bar(unique.size());
  double log_gain = 0;
  int failures = 0;
  for (size_t i = 0; i < unique.size(); ++i) {
    const Shape& s = unique[i];
    int8dit::TuneOptions opts = a.tune;
    opts.progress = [&](int done, int total) { bar.update(i, done, total, s); };
    int8dit::TuneResult r;
    st = int8dit::tune_gemm(int8dit::TuneProblem{s.m, s.n, s.k, a.out, a.bias}, &r, &opts);
    bar.finish();
    if (!st.ok()) {
      std::printf("%-13s %6lld %6lld %6lld  FAILED: %s\n", s.source.c_str(), (long long)s.m, (long long)s.n,
                  (long long)s.k, st.to_string().c_str());
      ++failures;
      continue;
    }
    const double gain = r.heuristic_us > 0 ? r.heuristic_us / r.config_us : 1.0;
    log_gain += std::log(gain);
    std::printf("%-13s %6lld %6lld %6lld %7lld  %-40s %9.1f  %-40s %9.1f  %5.3fx%s\n", s.source.c_str(), (long long)s.m,
                (long long)s.n, (long long)s.k, (long long)r.bucket.hi, r.config.c_str(), r.config_us,
                r.heuristic.c_str(), r.heuristic_us, gain, r.from_cache ? " (cached)" : "");
    std::fflush(stdout);
    bar.shape_done(i, s);
  }
  const size_t ok = unique.size() - static_cast<size_t>(failures);
  std::printf("done in %.1f s: %zu shapes tuned, geomean gain over the heuristic %.3fx%s\n", bar.seconds(), ok,
              ok ? std::exp(log_gain / double(ok)) : 1.0, failures ? "; some shapes FAILED (see above)" : "");
  return failures ? 1 : 0;
}

}  // namespace

int cmd_tune(const std::vector<std::string>& args) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
  try {
    return run(parse_args(args));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "int8dit tune: %s (see int8dit tune --help)\n", e.message.c_str());
    return 2;
  }
}
