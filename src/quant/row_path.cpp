#include "quant/row_path.h"

#include <cstdlib>
#include <cstring>

namespace int8dit::quant {

RowPathConfig parse_row_path(const char* rows, const char* stages, const char* grouped, const char* group_threads) {
  RowPathConfig c;
  if (rows && *rows) {
    if (std::strcmp(rows, "registers") == 0) {
      c.path = RowPath::kRegisters;
    } else if (std::strcmp(rows, "bulk") == 0) {
      c.path = RowPath::kBulkRing;
    } else if (std::strcmp(rows, "auto") != 0) {
      c.error = std::string("INT8DIT_QUANT_ROWS=") + rows + ": expected 'auto' (the default), 'bulk' or 'registers'";
      return c;
    }
  }
  if (stages && *stages) {
    char* end = nullptr;
    const long n = std::strtol(stages, &end, 10);
    if (*end != '\0' || n < 2 || n > 4) {
      c.error = std::string("INT8DIT_QUANT_RING_STAGES=") + stages + ": expected 2, 3 or 4 (row slots a CTA; default 2)";
      return c;
    }
    c.ring_stages = static_cast<int>(n);
  }
  if (grouped && *grouped) {
    if (std::strcmp(grouped, "registers") == 0) {
      c.grouped_transform = GroupedTransformRows::kRegisters;
    } else if (std::strcmp(grouped, "staged") == 0) {
      c.grouped_transform = GroupedTransformRows::kStaged;
    } else if (std::strcmp(grouped, "bulk") != 0) {
      c.error = std::string("INT8DIT_QUANT_GROUPED=") + grouped +
                ": expected 'bulk' (the default: the gated residual LayerNorm's next rows bulk-copied to shared memory by each "
                "group), 'staged' (copied vector by vector by each thread) or 'registers' (held in registers, as the other ops' rows)";
      return c;
    }
  }
  if (group_threads && *group_threads) {
    if (std::strcmp(group_threads, "double") == 0) {
      c.group_threads = GroupThreads::kDouble;
    } else if (std::strcmp(group_threads, "auto") != 0) {
      c.error = std::string("INT8DIT_QUANT_GROUP_THREADS=") + group_threads +
                ": expected 'auto' (the default: the library's grouped layouts) or 'double' (LayerNorm's grouped rows over "
                "twice the threads a row, two 512-thread CTAs an SM; not yet measured)";
      return c;
    }
  }
  return c;
}

const RowPathConfig& row_path_config() {
  static const RowPathConfig c = parse_row_path(std::getenv("INT8DIT_QUANT_ROWS"), std::getenv("INT8DIT_QUANT_RING_STAGES"),
                                                std::getenv("INT8DIT_QUANT_GROUPED"), std::getenv("INT8DIT_QUANT_GROUP_THREADS"));
  return c;
}

}  // namespace int8dit::quant
