// Internal: the in-memory tuning cache of one fingerprint, backed by its JSON file.
//
// Lookups take a shared lock (many GEMM calls at once); the file is read once, lazily, on the first
// lookup. A corrupted or foreign file is reported through the warning sink exactly once and
// rewritten right away (with this process's entries), so the next process finds a valid file.
#pragma once

#include <functional>
#include <shared_mutex>
#include <string>

#include "int8dit/status.h"
#include "tune/tune_key.h"

namespace int8dit::tune {

using WarningSink = std::function<void(const std::string& message)>;

// Writes "int8dit: warning: <message>" to stderr.
void warn_to_stderr(const std::string& message);

class TuneCache {
 public:
  TuneCache(std::string path, Fingerprint fingerprint, WarningSink warn = warn_to_stderr);

  const std::string& path() const { return path_; }
  const Fingerprint& fingerprint() const { return fingerprint_; }

  // Thread-safe. False when the key was never tuned.
  bool lookup(const TuneKey& key, TuneEntry* out);
  // Thread-safe. Adds (or replaces) an entry in memory and, when `persist`, merges it into the file;
  // entries other processes wrote meanwhile are picked up on the way.
  Status insert(const TuneKey& key, const TuneEntry& entry, bool persist);
  // Forget the in-memory entries; the next lookup reads the file again.
  void reset();

 private:
  void load_locked();  // needs mutex_ held exclusively

  const std::string path_;
  const Fingerprint fingerprint_;
  const WarningSink warn_;
  std::shared_mutex mutex_;
  bool loaded_ = false;
  bool warned_ = false;
  TuneTable table_;
};

}  // namespace int8dit::tune
