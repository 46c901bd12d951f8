// The M-bucket policy (docs/tuning.md): exact buckets up to M = 8, then eight equal buckets per
// octave, so a bucket is never wider than 1/8 of its M. Bucket edges fall on powers of two and, from
// M = 512 up, on multiples of 64 (the wgmma M granule), where a tile-count step happens anyway.
#include "int8dit/tune.h"

namespace int8dit {

MBucket m_bucket(int64_t m) {
  MBucket b;
  if (m <= 8) {
    b.hi = m < 1 ? 1 : m;
    b.lo = b.hi - 1;
    return b;
  }
  int octave = 0;  // m lies in (2^octave, 2^(octave+1)]
  while ((int64_t{2} << octave) < m) ++octave;
  const int64_t width = int64_t{1} << (octave - 3);
  b.hi = (m + width - 1) / width * width;
  b.lo = b.hi - width;
  return b;
}

}  // namespace int8dit
