// Internal: timing one GEMM configuration with CUDA events.
#pragma once

#include <cuda_runtime_api.h>

#include "gemm/kernel_registry.h"
#include "tune/stream_hold.h"
#include "tune/timing_buffers.h"

namespace int8dit::tune {

struct TimingPlan {
  int warmup_runs = 5;
  int timed_runs = 30;
};

// Launch `kernel` (for M = m rows of the buffers) warmup_runs times untimed, then timed_runs times behind `hold`, each launch between
// its own pair of events and on the next buffer set (so L2 holds none of its inputs); the result is
// the median of the timed launches in microseconds. A launch error is returned, not thrown away.
// NOTE: timed_runs is kept well below the ~1000-entry launch queue, which would otherwise block the
// host while the held stream cannot drain.
// Run `kernel` untimed until min_ms of GPU time have passed (at most a few thousand launches).
// NOTE: an idle GPU drops its SM clock and needs milliseconds of load to raise it again; without this,
// whichever candidate is timed first after the host's setup may run at a lowered clock and lose
// unfairly (bench/gemm/timing.h: one configuration timed 1.3x apart in two runs on an H200).
Status warm_up_clocks(const detail::GemmKernel& kernel, const TimingBuffers& buffers, cudaStream_t stream,
                      double min_ms);

Status time_candidate(const detail::GemmKernel& kernel, const TimingBuffers& buffers, int64_t m,
                      const TimingPlan& plan, StreamHold& hold, cudaStream_t stream, double* median_us);

}  // namespace int8dit::tune
