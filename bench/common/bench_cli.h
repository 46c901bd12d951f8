// What every benchmark program writes beside its figures, and the argument reading of the small ones.
// Header-only: each benchmark is its own executable, and these few lines are not worth a library.
#pragma once

#include <cstdio>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <string>

namespace bench_cli {

// The run's date for a results file, e.g. "2026-12-04T21:55:02Z".
inline std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// `s` as a JSON string literal (quotes and backslashes escaped; benchmark strings hold no control characters).
inline std::string json_quote(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) o += (ch == '"' || ch == '\\') ? std::string("\\") + ch : std::string(1, ch);
  return o + "\"";
}

// One "--name VALUE" option of a benchmark; `value` keeps its default when the option is not given.
struct ValueOption {
  const char* name;
  std::string* value;
};

enum class Parsed { kRun, kHelpShown, kBadArgument };

// Reads argv as a sequence of `options` (each followed by its value) and --help / -h, which prints `usage`.
// `command` receives the command line as given, for the results file. An unknown argument or an option
// without its value is reported on stderr, naming `program`.
inline Parsed parse_value_options(const char* program, int argc, char** argv, std::initializer_list<ValueOption> options,
                                  const char* usage, std::string* command) {
  *command = program;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    *command += " " + a;
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return Parsed::kHelpShown;
    }
    const ValueOption* match = nullptr;
    for (const ValueOption& o : options)
      if (a == o.name) match = &o;
    if (match == nullptr) {
      std::fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", program, a.c_str());
      return Parsed::kBadArgument;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value (try --help)\n", program, a.c_str());
      return Parsed::kBadArgument;
    }
    *match->value = argv[++i];
    *command += " " + *match->value;
  }
  return Parsed::kRun;
}

}  // namespace bench_cli
