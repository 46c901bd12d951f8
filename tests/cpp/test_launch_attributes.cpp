// The launch attributes the GEMM's launches carry (core/launch_attributes.h): the same cluster shape
// and programmatic serialization through the runtime's list and the driver's. Host code: no GPU needed.
#include <gtest/gtest.h>

#include "core/launch_attributes.h"

namespace {

using int8dit::detail::driver_launch_attributes;
using int8dit::detail::LaunchAttributes;
using int8dit::detail::runtime_launch_attributes;

// Both lists for `a` hold the cluster shape first where it is above 1 x 1, then the PDL flag where
// asked, and nothing else. `kValue`: the list's value member (.val for the runtime, .value for the
// driver).
template <auto kValue, class Attribute, class Id>
void expect_list(const LaunchAttributes& a, const Attribute (&list)[2], unsigned filled, Id cluster_id,
                 Id programmatic_id) {
  const bool clustered = a.cluster_x * a.cluster_y > 1;
  ASSERT_EQ(filled, unsigned(clustered) + unsigned(a.programmatic));
  unsigned i = 0;
  if (clustered) {
    EXPECT_EQ(list[i].id, cluster_id);
    const auto& value = list[i].*kValue;
    EXPECT_EQ(value.clusterDim.x, a.cluster_x);
    EXPECT_EQ(value.clusterDim.y, a.cluster_y);
    EXPECT_EQ(value.clusterDim.z, 1u);
    ++i;
  }
  if (a.programmatic) {
    EXPECT_EQ(list[i].id, programmatic_id);
    EXPECT_EQ((list[i].*kValue).programmaticStreamSerializationAllowed, 1);
  }
}

void expect_both_lists(const LaunchAttributes& a) {
  SCOPED_TRACE(testing::Message() << "cluster " << a.cluster_x << "x" << a.cluster_y << ", programmatic "
                                  << a.programmatic);
  cudaLaunchAttribute runtime[2]{};
  const unsigned runtime_filled = runtime_launch_attributes(a, runtime);
  expect_list<&cudaLaunchAttribute::val>(a, runtime, runtime_filled, cudaLaunchAttributeClusterDimension,
                                         cudaLaunchAttributeProgrammaticStreamSerialization);
  CUlaunchAttribute driver[2]{};
  const unsigned driver_filled = driver_launch_attributes(a, driver);
  expect_list<&CUlaunchAttribute::value>(a, driver, driver_filled, CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION,
                                         CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
}

TEST(LaunchAttributes, PlainLaunchCarriesNone) { expect_both_lists(LaunchAttributes{1, 1, false}); }

TEST(LaunchAttributes, ProgrammaticAloneWithoutCluster) { expect_both_lists(LaunchAttributes{1, 1, true}); }

TEST(LaunchAttributes, ClusterThenProgrammatic) { expect_both_lists(LaunchAttributes{2, 1, true}); }

TEST(LaunchAttributes, ClusterAlongNWithoutProgrammatic) { expect_both_lists(LaunchAttributes{1, 2, false}); }

// A list filled twice holds only the second call's entries (launch_kernel builds a fresh one each
// launch, but the count must never carry over).
TEST(LaunchAttributes, CountIsThisCallsOnly) {
  cudaLaunchAttribute runtime[2]{};
  EXPECT_EQ(runtime_launch_attributes(LaunchAttributes{2, 1, true}, runtime), 2u);
  EXPECT_EQ(runtime_launch_attributes(LaunchAttributes{1, 1, false}, runtime), 0u);
}

}  // namespace
