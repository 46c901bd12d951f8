#include "core/pdl_switch.h"

#include <cstdlib>
#include <cstring>

namespace int8dit::detail {

bool env_disables_pdl() {
  static const bool off = [] {
    const char* v = std::getenv("INT8DIT_PDL");
    return v && std::strcmp(v, "0") == 0;
  }();
  return off;
}

}  // namespace int8dit::detail
