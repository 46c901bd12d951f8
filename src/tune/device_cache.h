// Internal: the tuning cache of the current CUDA device, created on first use and kept for the
// life of the process (one per device; devices of one model share the file, not the object).
#pragma once

#include <string>

#include "int8dit/status.h"
#include "tune/tune_cache.h"
#include "tune/tune_key.h"

namespace int8dit::tune {

// GPU name, SM count, CUDA runtime version and int8dit version of the current device.
Status current_fingerprint(Fingerprint* out);

// INT8DIT_CACHE, else $XDG_CACHE_HOME/int8dit/ or $HOME/.cache/int8dit/ + tune-<gpu>-<sms>sm.json.
Status cache_path_for(const Fingerprint& fp, std::string* out);

// The cache of the current device (never null when Ok).
Status current_device_cache(TuneCache** out);

// reset() every device cache created so far.
void reset_device_caches();

}  // namespace int8dit::tune
