#include "tune/tune_cache.h"

#include <cstdio>
#include <mutex>

#include "core/cuda_check.h"
#include "tune/cache_file.h"

namespace int8dit::tune {

void warn_to_stderr(const std::string& message) { std::fprintf(stderr, "int8dit: warning: %s\n", message.c_str()); }

TuneCache::TuneCache(std::string path, Fingerprint fingerprint, WarningSink warn)
    : path_(std::move(path)), fingerprint_(std::move(fingerprint)), warn_(std::move(warn)) {}

void TuneCache::load_locked() {
  CacheFileRead r = read_cache_file(path_, fingerprint_);
  loaded_ = true;
  if (r.state == CacheFileState::kLoaded) {
    for (auto& [key, e] : r.entries) table_.emplace(key, e);  // in-memory entries win: they are newer
    return;
  }
  if (r.state == CacheFileState::kMissing) return;
  // kCorrupt or kForeign: never use it, say so once, and replace it so the warning does not repeat.
  Status rewrite = merge_into_cache_file(path_, fingerprint_, table_);
  if (warned_) return;
  warned_ = true;
  std::string msg = "ignoring the tuning cache " + path_ + ": " + r.why + "; ";
  msg += rewrite.ok() ? "it was rewritten for this GPU" : "it could not be rewritten: " + rewrite.message();
  warn_(msg);
}

bool TuneCache::lookup(const TuneKey& key, TuneEntry* out) {
  {
    std::shared_lock<std::shared_mutex> read(mutex_);
    if (loaded_) {
      auto it = table_.find(key);
      if (it == table_.end()) return false;
      *out = it->second;
      return true;
    }
  }
  std::unique_lock<std::shared_mutex> write(mutex_);
  if (!loaded_) load_locked();
  auto it = table_.find(key);
  if (it == table_.end()) return false;
  *out = it->second;
  return true;
}

Status TuneCache::insert(const TuneKey& key, const TuneEntry& entry, bool persist) {
  std::unique_lock<std::shared_mutex> write(mutex_);
  if (!loaded_) load_locked();
  table_[key] = entry;
  if (!persist) return Status::Ok();
  TuneTable merged;
  INT8DIT_RETURN_IF_ERROR(merge_into_cache_file(path_, fingerprint_, table_, &merged));
  table_ = std::move(merged);
  return Status::Ok();
}

void TuneCache::reset() {
  std::unique_lock<std::shared_mutex> write(mutex_);
  table_.clear();
  loaded_ = false;
}

}  // namespace int8dit::tune
