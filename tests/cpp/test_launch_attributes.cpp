// The launch attributes the GEMM's launches carry (core/launch_attributes.h): the same cluster shape
// and programmatic serialization through the runtime's list and the driver's. Host code: no GPU needed.
#include <gtest/gtest.h>

#include "core/launch_attributes.h"

namespace {

using int8dit::detail::driver_launch_attributes;
using int8dit::detail::LaunchAttributes;
using int8dit::detail::runtime_launch_attributes;

TEST(LaunchAttributes, PlainLaunchCarriesNone) {
  cudaLaunchAttribute runtime[2]{};
  CUlaunchAttribute driver[2]{};
  EXPECT_EQ(runtime_launch_attributes(LaunchAttributes{1, 1, false}, runtime), 0u);
  EXPECT_EQ(driver_launch_attributes(LaunchAttributes{1, 1, false}, driver), 0u);
}

TEST(LaunchAttributes, ProgrammaticAloneWithoutCluster) {
  cudaLaunchAttribute runtime[2]{};
  CUlaunchAttribute driver[2]{};
  ASSERT_EQ(runtime_launch_attributes(LaunchAttributes{1, 1, true}, runtime), 1u);
  EXPECT_EQ(runtime[0].id, cudaLaunchAttributeProgrammaticStreamSerialization);
  EXPECT_EQ(runtime[0].val.programmaticStreamSerializationAllowed, 1);
  ASSERT_EQ(driver_launch_attributes(LaunchAttributes{1, 1, true}, driver), 1u);
  EXPECT_EQ(driver[0].id, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
  EXPECT_EQ(driver[0].value.programmaticStreamSerializationAllowed, 1);
}

TEST(LaunchAttributes, ClusterThenProgrammaticInBothLists) {
  cudaLaunchAttribute runtime[2]{};
  CUlaunchAttribute driver[2]{};
  const LaunchAttributes a{2, 1, true};
  ASSERT_EQ(runtime_launch_attributes(a, runtime), 2u);
  EXPECT_EQ(runtime[0].id, cudaLaunchAttributeClusterDimension);
  EXPECT_EQ(runtime[0].val.clusterDim.x, 2u);
  EXPECT_EQ(runtime[0].val.clusterDim.y, 1u);
  EXPECT_EQ(runtime[0].val.clusterDim.z, 1u);
  EXPECT_EQ(runtime[1].id, cudaLaunchAttributeProgrammaticStreamSerialization);
  ASSERT_EQ(driver_launch_attributes(a, driver), 2u);
  EXPECT_EQ(driver[0].id, CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
  EXPECT_EQ(driver[0].value.clusterDim.x, 2u);
  EXPECT_EQ(driver[0].value.clusterDim.y, 1u);
  EXPECT_EQ(driver[0].value.clusterDim.z, 1u);
  EXPECT_EQ(driver[1].id, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
}

TEST(LaunchAttributes, ClusterAlongNWithoutProgrammatic) {
  cudaLaunchAttribute runtime[2]{};
  CUlaunchAttribute driver[2]{};
  const LaunchAttributes a{1, 2, false};
  ASSERT_EQ(runtime_launch_attributes(a, runtime), 1u);
  EXPECT_EQ(runtime[0].id, cudaLaunchAttributeClusterDimension);
  EXPECT_EQ(runtime[0].val.clusterDim.x, 1u);
  EXPECT_EQ(runtime[0].val.clusterDim.y, 2u);
  ASSERT_EQ(driver_launch_attributes(a, driver), 1u);
  EXPECT_EQ(driver[0].id, CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
  EXPECT_EQ(driver[0].value.clusterDim.y, 2u);
}

}  // namespace
