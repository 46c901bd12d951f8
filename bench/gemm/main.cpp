// int8dit_bench_gemm: the "Fast" benchmark of issue 3. See --help (options.cpp) for the flags and
// shape_bench.cpp for what one row measures.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>  // environ

#include "bench_cli.h"
#include "check.h"
#include "gpu_info.h"
#include "host_overhead.h"
#include "int8dit/device.h"
#include "int8dit/gemm.h"
#include "kernels.h"
#include "options.h"
#include "report.h"
#include "shape_bench.h"
#include "shapes.h"

namespace {

std::vector<bench::Shape> collect_shapes(const bench::Options& o) {
  std::vector<bench::Shape> shapes;
  for (const std::string& p : o.presets) {
    const std::vector<std::string> names = p == "all" ? bench::preset_names() : std::vector<std::string>{p};
    for (const std::string& name : names)
      for (const bench::Shape& s : bench::load_preset(o.shapes_dir, name)) shapes.push_back(s);
  }
  if (!o.shapes.empty())
    for (const bench::Shape& s : bench::parse_shape_list(o.shapes)) shapes.push_back(s);
  return shapes;
}

// The figures the targets refer to, printed at the end of the run.
void print_summary(const bench::RunReport& r) {
  using bench::Ours;
  const bench::Summary h = bench::summarize(r.rows, Ours::kDispatch),
                       s = bench::summarize(r.rows, Ours::kDispatchStreamOrder),
                       b = bench::summarize(r.rows, Ours::kBestConfig);
  auto text = [](double v) { return v > 0 ? std::to_string(v).substr(0, 7) : std::string("n/a"); };
  auto show = [&](const char* what, double v, double sv, double bv, const char* target) {
    std::printf("  %-44s %10s %10s %10s   target %s\n", what, text(v).c_str(), text(sv).c_str(), text(bv).c_str(),
                target);
  };
  std::printf("\nsummary                                          dispatch     no PDL  best-cfg\n");
  show("geomean speedup vs bf16 (M >= 4096)", h.geomean_vs_bf16_large, s.geomean_vs_bf16_large,
       b.geomean_vs_bf16_large, ">= 2.0");
  show("geomean speedup vs FP8 (M >= 4096)", h.geomean_vs_fp8_large, s.geomean_vs_fp8_large, b.geomean_vs_fp8_large,
       ">= 1.15");
  show("geomean speedup vs bf16 (M <= 1024)", h.geomean_vs_bf16_small, s.geomean_vs_bf16_small,
       b.geomean_vs_bf16_small, ">= 1.5");
  show("TOPS, Flux single-stream linear1", h.tops_flux_single_lin1, s.tops_flux_single_lin1, b.tops_flux_single_lin1,
       ">= 1600");
  if (r.host.status == "ok")
    std::printf("  %-44s %10.2f %10s   target <= 5 (%.2f us without pointer checks)\n", "host us per call (M = 1)",
                r.host.us_per_call, "", r.host.us_per_call_no_pointer_check);
  else
    std::printf("  %-44s n/a: %s\n", "host us per call (M = 1)", r.host.status.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  bench::RunReport report;
  std::vector<bench::Shape> shapes;
  try {
    report.opts = bench::parse_options(argc, argv);
    if (report.opts.help) {
      std::fputs(bench::help_text().c_str(), stdout);
      return 0;
    }
    shapes = collect_shapes(report.opts);
  } catch (const bench::BenchError& e) {
    std::fprintf(stderr, "int8dit_bench_gemm: %s\n", e.what());
    return 2;
  }
  const bench::Options& o = report.opts;
  try {
    report.gpu = bench::query_gpu(o.device);
  } catch (const bench::BenchError& e) {
    std::fprintf(stderr, "int8dit_bench_gemm: %s\n", e.what());
    return 2;
  }
  const bench::GpuInfo& g = report.gpu;
  report.date_utc = bench_cli::utc_now();
  report.library_version = int8dit::version();
  report.built_archs = int8dit::built_architectures();
  report.config_names = int8dit::gemm_config_names();
  const char* tune = std::getenv("INT8DIT_TUNE");
  report.dispatch_mode = tune && *tune ? std::string("INT8DIT_TUNE=") + tune : "INT8DIT_TUNE unset: the heuristic";
  // The switches change which kernels run and how (INT8DIT_PDL=0, INT8DIT_GEMM_PREFETCH=0, ...): an A/B
  // pair of runs differs only here.
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "INT8DIT_", 8) == 0) report.switches += (report.switches.empty() ? "" : ", ") + std::string(*e);

  std::printf("int8dit_bench_gemm on %s (sm_%d, %d SMs, L2 %.0f MB), driver %s, CUDA %d, cuBLASLt %d\n",
              g.name.c_str(), g.cc, g.sm_count, g.l2_bytes / 1e6, g.driver_version.empty() ? "?" : g.driver_version.c_str(),
              g.cuda_runtime_version, g.cublaslt_version);
  std::printf("INT8 dense peak: %s\n", g.int8_dense_peak_tops > 0
                                           ? (std::to_string(int(g.int8_dense_peak_tops)) + " TOPS (" + g.peak_source + ")").c_str()
                                           : g.peak_source.c_str());
  std::printf("int8dit %s built for %s (%s); %s kernels: %s\n", report.library_version.c_str(),
              report.built_archs.c_str(), report.dispatch_mode.c_str(),
              int8dit::to_string(int8dit::kernel_family_for(g.cc)),
              report.config_names.empty() ? "(none built for this GPU)" : report.config_names.c_str());
  std::printf("%zu shapes, %d runs each (median), %d warm-up\n", shapes.size(), o.runs, o.warmup);
  std::fflush(stdout);

  int status = 0;
  try {
    cudaStream_t stream = nullptr;
    BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    report.sm_clock_mhz_start = bench::measure_sm_clock_mhz(g.sm_count, 50'000'000);
    {
      bench::ShapeBench shape_bench(o, g, stream);
      report.clock_sampling = shape_bench.clock_sampling();
      for (size_t i = 0; i < shapes.size(); ++i) {
        const bench::Shape& s = shapes[i];
        std::printf("[%zu/%zu] %s %lldx%lldx%lld  %s\n", i + 1, shapes.size(), s.preset.c_str(), (long long)s.m,
                    (long long)s.n, (long long)s.k, s.layer.c_str());
        std::fflush(stdout);
        report.rows.push_back(shape_bench.run(s));
        if (report.rows.back().check_failed) status = 1;
      }
    }
    try {
      report.host = bench::measure_host_overhead(o, stream);
    } catch (const bench::BenchError& e) {
      report.host.status = std::string("error: ") + e.what();
      status = 1;
    }
    report.sm_clock_mhz_end = bench::measure_sm_clock_mhz(g.sm_count, 50'000'000);
    cudaStreamDestroy(stream);
  } catch (const bench::BenchError& e) {
    std::fprintf(stderr, "int8dit_bench_gemm: %s\n", e.what());
    status = 1;
  }
  print_summary(report);
  if (status) std::printf("\nSOME CHECKS FAILED or rows could not run: see the !!! lines above.\n");
  if (!o.out_dir.empty()) {
    try {
      bench::write_reports(o.out_dir, report);
      std::printf("wrote %s/gemm.json and %s/gemm.md\n", o.out_dir.c_str(), o.out_dir.c_str());
    } catch (const bench::BenchError& e) {
      std::fprintf(stderr, "int8dit_bench_gemm: %s\n", e.what());
      status = 1;
    }
  }
  return status;
}
