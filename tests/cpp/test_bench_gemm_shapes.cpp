// bench/gemm/shapes.cpp: the preset files under bench/shapes as the GEMM benchmark reads them. Every
// file the repository ships parses into shapes the GEMM takes (K a multiple of 16), `--preset all` is
// the issue's four-model set the summary targets are defined on, and the presets outside it (FLUX.2-dev)
// load by name. Host code only.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "check.h"
#include "shapes.h"

namespace {

const std::string kShapesDir = INT8DIT_BENCH_SHAPES_DIR;

std::vector<std::string> shipped_presets() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kShapesDir))
    if (entry.path().extension() == ".csv") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(GemmBenchShapes, EveryShippedPresetParsesIntoShapesTheGemmTakes) {
  const std::vector<std::string> names = shipped_presets();
  ASSERT_GE(names.size(), 5u) << kShapesDir;
  for (const std::string& name : names) {
    const std::vector<bench::Shape> shapes = bench::load_preset(kShapesDir, name);
    EXPECT_FALSE(shapes.empty()) << name;
    for (const bench::Shape& s : shapes) {
      EXPECT_EQ(s.preset, name);
      EXPECT_FALSE(s.layer.empty()) << name << " " << s.m << "x" << s.n << "x" << s.k;
      EXPECT_EQ(s.k % 16, 0) << name << ": K must be a multiple of 16, got " << s.k;
    }
  }
}

TEST(GemmBenchShapes, AllIsTheIssuesFourModelsAndFlux2DevAndFlux3LoadByName) {
  const std::vector<std::string>& all = bench::preset_names();
  EXPECT_EQ(all, (std::vector<std::string>{"flux-dev", "sd3-medium", "pixart-sigma", "dit-xl-2"}));
  // FLUX.2-dev's shapes, as int8dit runs them in diffusers (q, k, v separate; single-stream 6144 -> 55296).
  const std::vector<bench::Shape> flux2 = bench::load_preset(kShapesDir, "flux2-dev");
  ASSERT_EQ(flux2.size(), 8u);
  EXPECT_EQ(flux2[0].m, 4608);
  EXPECT_EQ(flux2[0].n, 3 * 6144 + 2 * 18432);
  EXPECT_EQ(flux2[0].k, 6144);
  EXPECT_EQ(flux2[1].k, 6144 + 18432);
  // FLUX.3's: the joint blocks over 4608 tokens first, SwiGLU's linear_in 3072 -> 2 * 9216
  const std::vector<bench::Shape> flux3 = bench::load_preset(kShapesDir, "flux3");
  ASSERT_EQ(flux3.size(), 10u);
  EXPECT_EQ(flux3[0].m, 4608);
  EXPECT_EQ(flux3[1].n, 2 * 9216);
  EXPECT_EQ(flux3[2].k, 9216);
  EXPECT_EQ(flux3[9].k, 20480);
}

TEST(GemmBenchShapes, AnUnknownPresetIsRefusedWithTheKnownOnes) {
  try {
    bench::load_preset(kShapesDir, "flux-9");
    FAIL() << "an unknown preset loaded";
  } catch (const bench::BenchError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("flux-9.csv"), std::string::npos) << what;
    EXPECT_NE(what.find("flux3"), std::string::npos) << what;
    EXPECT_NE(what.find("flux2-dev"), std::string::npos) << what;
    EXPECT_NE(what.find("--shapes-dir"), std::string::npos) << what;
  }
}

}  // namespace
