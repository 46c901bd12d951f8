// Which stream order a GEMM call launches in (no GPU needed): programmatic dependent launch unless
// the call's options or INT8DIT_PDL=0 turn it off. ctest runs this file twice, the second time with
// INT8DIT_PDL=0 in the environment (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "gemm/kernel_registry.h"
#include "int8dit/gemm.h"

namespace int8dit::detail {
namespace {

bool environment_turns_pdl_off() {
  const char* v = std::getenv("INT8DIT_PDL");
  return v && std::strcmp(v, "0") == 0;
}

TEST(GemmStreamOrder, DefaultIsProgrammaticUnlessTheEnvironmentSaysZero) {
  const StreamOrder expected = environment_turns_pdl_off() ? StreamOrder::kFull : StreamOrder::kProgrammatic;
  EXPECT_EQ(stream_order_for(nullptr), expected);
  const GemmOptions defaults;
  EXPECT_TRUE(defaults.programmatic_launch);
  EXPECT_EQ(stream_order_for(&defaults), expected);
}

TEST(GemmStreamOrder, OptionsTurnItOff) {
  GemmOptions plain;
  plain.programmatic_launch = false;
  EXPECT_EQ(stream_order_for(&plain), StreamOrder::kFull);
}

}  // namespace
}  // namespace int8dit::detail
