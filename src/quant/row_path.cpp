#include "quant/row_path.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace int8dit::quant {
namespace {

// One setting that names a choice: unset or empty leaves *out as it is; a name in `choices` sets it; anything
// else is an error naming the variable and the value, then `expected` (the choices and what each does).
template <typename E>
bool take_choice(const char* variable, const char* value, std::initializer_list<std::pair<const char*, E>> choices,
                 const char* expected, E* out, std::string* error) {
  if (!value || !*value) return true;
  for (const auto& [name, choice] : choices) {
    if (std::strcmp(value, name) == 0) {
      *out = choice;
      return true;
    }
  }
  *error = std::string(variable) + "=" + value + ": " + expected;
  return false;
}

}  // namespace

RowPathConfig parse_row_path(const char* rows, const char* stages, const char* grouped, const char* group_threads) {
  RowPathConfig c;
  if (!take_choice("INT8DIT_QUANT_ROWS", rows,
                   {{"auto", RowPath::kAuto}, {"bulk", RowPath::kBulkRing}, {"registers", RowPath::kRegisters}},
                   "expected 'auto' (the default), 'bulk' or 'registers'", &c.path, &c.error))
    return c;
  if (stages && *stages) {
    char* end = nullptr;
    const long n = std::strtol(stages, &end, 10);
    if (*end != '\0' || n < 2 || n > 4) {
      c.error = std::string("INT8DIT_QUANT_RING_STAGES=") + stages + ": expected 2, 3 or 4 (row slots a CTA; default 2)";
      return c;
    }
    c.ring_stages = static_cast<int>(n);
  }
  if (!take_choice("INT8DIT_QUANT_GROUPED", grouped,
                   {{"bulk", GroupedTransformRows::kBulk},
                    {"staged", GroupedTransformRows::kStaged},
                    {"registers", GroupedTransformRows::kRegisters}},
                   "expected 'bulk' (the default: the gated residual LayerNorm's next rows bulk-copied to shared memory by "
                   "each group), 'staged' (copied vector by vector by each thread) or 'registers' (held in registers, as the "
                   "other ops' rows)",
                   &c.grouped_transform, &c.error))
    return c;
  take_choice("INT8DIT_QUANT_GROUP_THREADS", group_threads, {{"auto", GroupThreads::kAuto}, {"double", GroupThreads::kDouble}},
              "expected 'auto' (the default: the library's grouped layouts) or 'double' (the norms' and SmoothQuant's "
              "grouped rows over twice the threads a row, two 512-thread CTAs an SM; not yet measured)",
              &c.group_threads, &c.error);
  return c;
}

const RowPathConfig& row_path_config() {
  static const RowPathConfig c = parse_row_path(std::getenv("INT8DIT_QUANT_ROWS"), std::getenv("INT8DIT_QUANT_RING_STAGES"),
                                                std::getenv("INT8DIT_QUANT_GROUPED"), std::getenv("INT8DIT_QUANT_GROUP_THREADS"));
  return c;
}

}  // namespace int8dit::quant
