// The tuner on a GPU: every candidate configuration computes the same int32 accumulator bit for bit
// (so a tuned choice never changes results), tune-on-first-use and offline tuning pick a valid
// configuration, and the cache is used only in the modes that ask for it.
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host_array.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "int8dit/reference.h"
#include "int8dit/tune.h"

namespace int8dit {
namespace {

// The device cache reads INT8DIT_CACHE once per process: point it at a private file before any test.
class PrivateCacheFile : public ::testing::Environment {
 public:
  void SetUp() override {
    path_ = "/tmp/int8dit_test_tune_gpu_" + std::to_string(getpid()) + ".json";
    setenv("INT8DIT_CACHE", path_.c_str(), 1);
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove((path_ + ".lock").c_str());
  }

 private:
  std::string path_;
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PrivateCacheFile);

bool has_gpu(std::string* why) {
  DeviceInfo info;
  Status st = current_device(&info);
  if (!st.ok()) {
    *why = st.to_string();
    return false;
  }
  if (!info.family_built) {
    *why = "this library has no kernels for " + info.name;
    return false;
  }
  return true;
}

#define SKIP_WITHOUT_GPU()                                  \
  do {                                                      \
    std::string why;                                        \
    if (!has_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;  \
  } while (0)

std::vector<std::string> split(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

template <typename T>
struct DeviceArray {
  explicit DeviceArray(size_t n) : n(n) { EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  ~DeviceArray() { cudaFree(ptr); }
  void upload(const T* host) { ASSERT_EQ(cudaMemcpy(ptr, host, n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess); }
  void download(T* host) const { ASSERT_EQ(cudaMemcpy(host, ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess); }
  T* ptr = nullptr;
  size_t n;
};

// One raw-int32 problem: random int8 inputs on host and device, and the CPU reference's answer.
struct Int32Problem {
  Int32Problem(int64_t m, int64_t n, int64_t k)
      : m(m), n(n), k(k), a(m * k), b(n * k), ref(m * n), da(m * k), db(n * k), dd(m * n) {
    std::mt19937 rng(static_cast<unsigned>(m * 7919 + n * 31 + k) ^ std::random_device{}());
    std::uniform_int_distribution<int> q(-127, 127);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int8_t>(q(rng));
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(q(rng));
    da.upload(a.data());
    db.upload(b.data());
    GemmParams host = params();
    host.a = a.data(), host.b = b.data(), host.d = ref.data();
    EXPECT_TRUE(ref::gemm_w8a8(host).ok());
  }
  GemmParams params() const {
    GemmParams p;
    p.m = m, p.n = n, p.k = k;
    p.a = da.ptr, p.lda = k;
    p.b = db.ptr, p.ldb = k;
    p.d = dd.ptr, p.d_type = DType::kInt32, p.ldd = n;
    return p;
  }
  // Run with `opts`, poisoning D first so an unwritten element cannot pass; count mismatches.
  int64_t mismatches(const GemmOptions* opts, std::string* error) {
    cudaMemset(dd.ptr, 0x7f, dd.n * sizeof(int32_t));
    GemmParams p = params();
    DeviceArray<uint8_t> workspace(gemm_workspace_size(p, opts));
    p.workspace = workspace.ptr;
    p.workspace_bytes = workspace.n;
    Status st = gemm_w8a8(p, nullptr, opts);
    if (!st.ok()) {
      *error = st.to_string();
      return -1;
    }
    if (cudaDeviceSynchronize() != cudaSuccess) {
      *error = cudaGetErrorString(cudaGetLastError());
      return -1;
    }
    HostArray<int32_t> out(dd.n);
    dd.download(out.data());
    int64_t bad = 0;
    for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
    return bad;
  }

  int64_t m, n, k;
  HostArray<int8_t> a, b;
  HostArray<int32_t> ref;
  DeviceArray<int8_t> da, db;
  DeviceArray<int32_t> dd;
};

// The tuner may pick any configuration of a family for a key, so the int32 accumulator of every
// candidate must match the reference bit for bit. Both families are checked (sm80 runs on Hopper too).
TEST(TuneGpu, EveryCandidateGivesBitIdenticalInt32) {
  SKIP_WITHOUT_GPU();
  const int64_t shapes[][3] = {{1, 256, 64}, {65, 3072, 1024}, {129, 384, 3072}, {1000, 1152, 512}, {4608, 3072, 128}};
  for (bool sm80 : {false, true}) {
    GemmOptions family;
    family.force_sm80 = sm80;
    const std::vector<std::string> names = split(gemm_config_names(&family));
    if (names.empty()) continue;  // that family was not built
    for (const auto& s : shapes) {
      Int32Problem prob(s[0], s[1], s[2]);
      int runnable = 0;
      for (const std::string& name : names) {
        GemmOptions opts = family;
        opts.config = name.c_str();
        if (!gemm_can_implement(prob.params(), &opts).ok()) continue;  // another output type
        ++runnable;
        std::string error;
        int64_t bad = prob.mismatches(&opts, &error);
        EXPECT_EQ(bad, 0) << name << " at M=" << s[0] << " N=" << s[1] << " K=" << s[2] << ": "
                          << (bad < 0 ? error : std::to_string(bad) + " int32 values differ from the reference");
      }
      EXPECT_GE(runnable, 1) << "no configuration writes int32 for M=" << s[0] << " N=" << s[1] << " K=" << s[2];
    }
  }
}

// A bf16 key's candidates (tiles, schedules, stream-K) must agree bit for bit too, or tuning would
// change a model's outputs: same accumulator, same epilogue arithmetic.
TEST(TuneGpu, EveryBf16CandidateGivesTheSameBits) {
  SKIP_WITHOUT_GPU();
  const int64_t shapes[][3] = {{7, 3072, 3072}, {333, 1536, 1536}, {1000, 4608, 1152}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    Int32Problem inputs(m, n, k);  // reuses its int8 A and B on the device
    std::mt19937 rng(static_cast<unsigned>(m + n + k));
    std::uniform_real_distribution<float> scale(1e-4f, 1e-2f), bias(-2.f, 2.f);
    HostArray<float> sa(m), sb(n), bi(n);
    for (int64_t i = 0; i < m; ++i) sa[i] = scale(rng);
    for (int64_t i = 0; i < n; ++i) sb[i] = scale(rng), bi[i] = bias(rng);
    DeviceArray<float> dsa(m), dsb(n), dbi(n);
    dsa.upload(sa.data());
    dsb.upload(sb.data());
    dbi.upload(bi.data());
    DeviceArray<uint16_t> d(m * n);
    GemmParams p = inputs.params();
    p.scale_a = dsa.ptr, p.scale_b = dsb.ptr, p.bias = dbi.ptr;
    p.d = d.ptr, p.d_type = DType::kBF16;

    std::vector<uint16_t> first;
    std::string first_name;
    for (const std::string& name : split(gemm_config_names())) {
      GemmOptions opts;
      opts.config = name.c_str();
      if (!gemm_can_implement(p, &opts).ok()) continue;
      DeviceArray<uint8_t> workspace(gemm_workspace_size(p, &opts));  // stream-K needs one
      GemmParams run = p;
      run.workspace = workspace.ptr;
      run.workspace_bytes = workspace.n;
      cudaMemset(d.ptr, 0xff, d.n * sizeof(uint16_t));  // NaN poison
      Status st = gemm_w8a8(run, nullptr, &opts);
      ASSERT_TRUE(st.ok()) << name << ": " << st.to_string();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << name;
      std::vector<uint16_t> out(d.n);
      d.download(out.data());
      if (first.empty()) {
        first = std::move(out);
        first_name = name;
        continue;
      }
      int64_t differ = 0;
      for (size_t i = 0; i < out.size(); ++i) differ += out[i] != first[i];
      EXPECT_EQ(differ, 0) << name << " and " << first_name << " disagree on " << differ << " bf16 values at M=" << m
                           << " N=" << n << " K=" << k;
    }
    EXPECT_FALSE(first.empty()) << "no bf16 configuration for M=" << m << " N=" << n << " K=" << k;
  }
}

TEST(TuneGpu, OfflineTuningPicksTheFastestValidCandidate) {
  SKIP_WITHOUT_GPU();
  TuneProblem problem{300, 1536, 1024, DType::kBF16, true};
  TuneOptions opts;
  opts.timed_runs = 5;
  opts.retune = true;
  int progress_calls = 0, last_total = 0;
  opts.progress = [&](int done, int total) {
    ++progress_calls;
    EXPECT_EQ(done, progress_calls);
    last_total = total;
  };
  TuneResult r;
  Status st = tune_gemm(problem, &r, &opts);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.bucket.hi, m_bucket(300).hi);
  EXPECT_GE(r.candidates, 1);
  EXPECT_EQ(progress_calls, last_total);
  const std::vector<std::string> names = split(gemm_config_names());
  EXPECT_NE(std::find(names.begin(), names.end(), r.config), names.end()) << r.config;
  EXPECT_GT(r.config_us, 0);
  // The heuristic's pick is one of the candidates, so the winner is never slower than it.
  ASSERT_FALSE(r.heuristic.empty());
  EXPECT_LE(r.config_us, r.heuristic_us);

  TuneResult again;
  opts.retune = false;
  ASSERT_TRUE(tune_gemm(problem, &again, &opts).ok());
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.config, r.config);
}

TEST(TuneGpu, TuneOnFirstUsePicksAValidConfigAndKeepsResultsExact) {
  SKIP_WITHOUT_GPU();
  Int32Problem prob(777, 1024, 2048);
  set_tune_mode(TuneMode::kHeuristic);
  const std::string heuristic = gemm_selected_config(prob.params());
  ASSERT_FALSE(heuristic.empty());

  set_tune_mode(TuneMode::kUseCache);  // nothing tuned for this key yet: the heuristic serves
  EXPECT_EQ(gemm_selected_config(prob.params()), heuristic);

  set_tune_mode(TuneMode::kTuneOnFirstUse);
  std::string error;
  EXPECT_EQ(prob.mismatches(nullptr, &error), 0) << error;  // this call tunes the key, then runs
  const std::string tuned = gemm_selected_config(prob.params());
  const std::vector<std::string> names = split(gemm_config_names());
  EXPECT_NE(std::find(names.begin(), names.end(), tuned), names.end()) << tuned;

  TuneResult cached;
  TuneOptions no_retune;
  ASSERT_TRUE(tune_gemm(TuneProblem{777, 1024, 2048, DType::kInt32, false}, &cached, &no_retune).ok());
  EXPECT_TRUE(cached.from_cache) << "first use did not store the key";
  EXPECT_EQ(cached.config, tuned);
  // Another M of the same bucket uses the same entry without tuning again.
  Int32Problem same_bucket(m_bucket(777).lo + 1, 1024, 2048);
  EXPECT_EQ(gemm_selected_config(same_bucket.params()), tuned);
  EXPECT_EQ(same_bucket.mismatches(nullptr, &error), 0) << error;

  // The file holds it too: a fresh in-memory cache (as in a new process) finds it.
  tune_cache_reset();
  set_tune_mode(TuneMode::kUseCache);
  EXPECT_EQ(gemm_selected_config(prob.params()), tuned);
  set_tune_mode(TuneMode::kHeuristic);
  EXPECT_EQ(gemm_selected_config(prob.params()), heuristic);
}

TEST(TuneGpu, BadProblemsAreRejectedWithAMessage) {
  SKIP_WITHOUT_GPU();
  TuneResult r;
  Status st = tune_gemm(TuneProblem{128, 3072, 1000, DType::kBF16, false}, &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("K = 1000"), std::string::npos) << st.message();
  st = tune_gemm(TuneProblem{0, 3072, 3072, DType::kBF16, false}, &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace int8dit
