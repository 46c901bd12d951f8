#include "tune/tune_key.h"

namespace int8dit::tune {

std::string Fingerprint::describe() const {
  return gpu + ", " + std::to_string(sm_count) + " SMs, CUDA runtime " + std::to_string(cuda_runtime) +
         ", int8dit " + library;
}

std::string TuneKey::describe() const {
  return family + " M<=" + std::to_string(m_hi) + " N=" + std::to_string(n) + " K=" + std::to_string(k) + " " +
         to_string(d_type) + (bias ? " bias" : "");
}

}  // namespace int8dit::tune
