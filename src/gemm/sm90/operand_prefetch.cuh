// The EVT node that issues the kernel-start L2 prefetch of operand_prefetch.h (which says why).
#pragma once

#include "cutlass/cutlass.h"
#include "cutlass/epilogue/fusion/sm90_visitor_load_tma_warpspecialized.hpp"

#include "gemm/sm90/operand_prefetch.h"

namespace int8dit::detail::sm90 {

// A CUTLASS row broadcast (EVT node) that also issues an OperandPrefetch when the kernel constructs
// it. Only the construction differs; loading and visiting are the base node's.
template <class RowBroadcast>
struct PrefetchingRowBroadcast : RowBroadcast {
  using Base = RowBroadcast;
  using SharedStorage = typename Base::SharedStorage;
  struct Arguments {
    typename Base::Arguments broadcast;
    OperandPrefetch prefetch;
  };
  struct Params {
    typename Base::Params broadcast;
    OperandPrefetch prefetch;
  };

  template <class ProblemShape>
  static constexpr Params to_underlying_arguments(ProblemShape const& shape, Arguments const& args, void* workspace) {
    return {Base::to_underlying_arguments(shape, args.broadcast, workspace), args.prefetch};
  }
  template <class ProblemShape>
  static bool can_implement(ProblemShape const& shape, Arguments const& args) {
    return Base::can_implement(shape, args.broadcast);
  }
  template <class ProblemShape>
  static size_t get_workspace_size(ProblemShape const& shape, Arguments const& args) {
    return Base::get_workspace_size(shape, args.broadcast);
  }
  template <class ProblemShape>
  static cutlass::Status initialize_workspace(ProblemShape const& shape, Arguments const& args, void* workspace,
                                              cudaStream_t stream, cutlass::CudaHostAdapter* adapter = nullptr) {
    return Base::initialize_workspace(shape, args.broadcast, workspace, stream, adapter);
  }

  CUTLASS_HOST_DEVICE PrefetchingRowBroadcast() {}
  CUTLASS_HOST_DEVICE PrefetchingRowBroadcast(Params const& params, SharedStorage const& shared_storage)
      : Base(params.broadcast, shared_storage) {
#if defined(__CUDA_ARCH__)
    params.prefetch.issue();
#endif
  }
};

}  // namespace int8dit::detail::sm90
