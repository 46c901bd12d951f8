// Internal: the tuning cache's JSON file. One file holds the entries of one fingerprint.
//
// Writers never modify the file in place: under an exclusive flock on "<file>.lock" they read the
// current file, merge their entries over it, write a temporary file in the same directory and
// rename() it over the old one. Readers take no lock: rename is atomic, so a reader sees either the
// old or the new file, never a torn one, and two processes tuning at once lose no entry.
#pragma once

#include <string>

#include "int8dit/status.h"
#include "tune/tune_key.h"

namespace int8dit::tune {

enum class CacheFileState {
  kLoaded,   // parsed, and its fingerprint is ours
  kMissing,  // no file yet
  kCorrupt,  // unreadable, not JSON, or not a tuning cache
  kForeign,  // a valid cache of another GPU, CUDA runtime or int8dit version
};

struct CacheFileRead {
  CacheFileState state = CacheFileState::kMissing;
  std::string why;  // for kCorrupt / kForeign: what was wrong, for the warning
  TuneTable entries;
};

CacheFileRead read_cache_file(const std::string& path, const Fingerprint& fp);

// Merge `updates` over the file's entries (a corrupted or foreign file counts as empty) and write the
// result atomically. `merged` (optional) receives what the file now holds.
Status merge_into_cache_file(const std::string& path, const Fingerprint& fp, const TuneTable& updates,
                             TuneTable* merged = nullptr);

// The document a table is written as (exposed for tests).
std::string cache_file_text(const Fingerprint& fp, const TuneTable& entries);

}  // namespace int8dit::tune
