#include "tune/cache_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/cuda_check.h"
#include "int8dit/tune.h"
#include "tune/json.h"

namespace int8dit::tune {
namespace {

constexpr const char* kFormat = "int8dit-tune-cache";
constexpr int kFormatVersion = 1;

std::string errno_text() { return std::strerror(errno); }

bool dtype_from_string(const std::string& s, DType* out) {
  for (DType t : {DType::kBF16, DType::kFP16, DType::kFP32, DType::kInt32}) {
    if (s == to_string(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

JsonValue fingerprint_json(const Fingerprint& fp) {
  JsonValue v = JsonValue::object();
  v.set("gpu", JsonValue::string(fp.gpu));
  v.set("sm_count", JsonValue::number(fp.sm_count));
  v.set("cuda_runtime", JsonValue::number(fp.cuda_runtime));
  v.set("library", JsonValue::string(fp.library));
  return v;
}

bool fingerprint_from_json(const JsonValue& v, Fingerprint* fp) {
  const JsonValue* gpu = v.find("gpu");
  const JsonValue* sms = v.find("sm_count");
  const JsonValue* rt = v.find("cuda_runtime");
  const JsonValue* lib = v.find("library");
  if (!gpu || !gpu->is_string() || !sms || !sms->is_number() || !rt || !rt->is_number() || !lib || !lib->is_string())
    return false;
  fp->gpu = gpu->as_string();
  fp->sm_count = static_cast<int>(sms->as_number());
  fp->cuda_runtime = static_cast<int>(rt->as_number());
  fp->library = lib->as_string();
  return true;
}

JsonValue entry_json(const TuneKey& key, const TuneEntry& e) {
  JsonValue v = JsonValue::object();
  v.set("family", JsonValue::string(key.family));
  v.set("m_hi", JsonValue::number(static_cast<double>(key.m_hi)));
  v.set("n", JsonValue::number(static_cast<double>(key.n)));
  v.set("k", JsonValue::number(static_cast<double>(key.k)));
  v.set("out", JsonValue::string(to_string(key.d_type)));
  v.set("bias", JsonValue::boolean(key.bias));
  v.set("config", JsonValue::string(e.config));
  v.set("config_us", JsonValue::number(e.config_us));
  v.set("heuristic", JsonValue::string(e.heuristic));
  v.set("heuristic_us", JsonValue::number(e.heuristic_us));
  return v;
}

bool entry_from_json(const JsonValue& v, TuneKey* key, TuneEntry* e) {
  auto str = [&](const char* name, std::string* out) {
    const JsonValue* f = v.find(name);
    if (!f || !f->is_string()) return false;
    *out = f->as_string();
    return true;
  };
  auto num = [&](const char* name, double* out) {
    const JsonValue* f = v.find(name);
    if (!f || !f->is_number()) return false;
    *out = f->as_number();
    return true;
  };
  std::string out_type;
  double m_hi = 0, n = 0, k = 0;
  const JsonValue* bias = v.find("bias");
  if (!str("family", &key->family) || !num("m_hi", &m_hi) || !num("n", &n) || !num("k", &k) ||
      !str("out", &out_type) || !bias || !bias->is_bool() || !str("config", &e->config) ||
      !num("config_us", &e->config_us) || !str("heuristic", &e->heuristic) || !num("heuristic_us", &e->heuristic_us))
    return false;
  if (!dtype_from_string(out_type, &key->d_type) || m_hi < 1 || n < 1 || k < 1 || e->config.empty()) return false;
  key->m_hi = static_cast<int64_t>(m_hi);
  key->n = static_cast<int64_t>(n);
  key->k = static_cast<int64_t>(k);
  key->bias = bias->as_bool();
  // An entry whose m_hi is not a bucket edge was not written by this policy: reject the file.
  return m_bucket(key->m_hi).hi == key->m_hi;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status make_dirs(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return Status::Ok();
  struct stat st{};
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status(StatusCode::kInvalidArgument, dir + " exists and is not a directory: point INT8DIT_CACHE elsewhere");
  }
  INT8DIT_RETURN_IF_ERROR(make_dirs(parent_dir(dir)));
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status(StatusCode::kInternal, "cannot create " + dir + " (" + errno_text() + "): set INT8DIT_CACHE to a writable path");
  return Status::Ok();
}

// Holds an exclusive flock for the lifetime of the object.
class FileLock {
 public:
  explicit FileLock(const std::string& lock_path) {
    fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error_ = "cannot open " + lock_path + " (" + errno_text() + ")";
      return;
    }
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        error_ = "cannot lock " + lock_path + " (" + errno_text() + ")";
        return;
      }
    }
    locked_ = true;
  }
  ~FileLock() {
    if (fd_ >= 0) {
      if (locked_) flock(fd_, LOCK_UN);
      close(fd_);
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  bool locked() const { return locked_; }
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  bool locked_ = false;
  std::string error_;
};

Status write_all(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(StatusCode::kInternal, "cannot write " + path + " (" + errno_text() + ")");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Write to a fresh temporary file beside `path`, flush it to disk, then rename it over `path`.
Status write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0)
    return Status(StatusCode::kInternal, "cannot create a temporary file beside " + path + " (" + errno_text() +
                                             "): set INT8DIT_CACHE to a writable path");
  Status st = write_all(fd, text, tmp);
  // NOTE: fsync before rename, or a crash could leave the new name pointing at an empty file.
  if (st.ok() && fsync(fd) != 0) st = Status(StatusCode::kInternal, "cannot flush " + tmp + " (" + errno_text() + ")");
  fchmod(fd, 0644);
  close(fd);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    st = Status(StatusCode::kInternal, "cannot rename " + tmp + " to " + path + " (" + errno_text() + ")");
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

}  // namespace

std::string cache_file_text(const Fingerprint& fp, const TuneTable& entries) {
  JsonValue doc = JsonValue::object();
  doc.set("format", JsonValue::string(kFormat));
  doc.set("format_version", JsonValue::number(kFormatVersion));
  doc.set("device", fingerprint_json(fp));
  JsonValue list = JsonValue::array();
  for (const auto& [key, e] : entries) list.push(entry_json(key, e));
  doc.set("entries", std::move(list));
  return doc.dump();
}

CacheFileRead read_cache_file(const std::string& path, const Fingerprint& fp) {
  CacheFileRead r;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    struct stat st{};
    if (stat(path.c_str(), &st) == 0) {
      r.state = CacheFileState::kCorrupt;
      r.why = "it cannot be read (" + errno_text() + ")";
    }
    return r;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  JsonValue doc;
  std::string error;
  r.state = CacheFileState::kCorrupt;
  if (!parse_json(buf.str(), &doc, &error)) {
    r.why = "it is not valid JSON (" + error + ")";
    return r;
  }
  const JsonValue* format = doc.find("format");
  const JsonValue* version = doc.find("format_version");
  const JsonValue* device = doc.find("device");
  const JsonValue* entries = doc.find("entries");
  if (!format || !format->is_string() || format->as_string() != kFormat || !version || !version->is_number() ||
      !device || !entries || !entries->is_array()) {
    r.why = "it is not an int8dit tuning cache";
    return r;
  }
  Fingerprint theirs;
  if (!fingerprint_from_json(*device, &theirs)) {
    r.why = "its \"device\" object is malformed";
    return r;
  }
  if (static_cast<int>(version->as_number()) != kFormatVersion || theirs != fp) {
    r.state = CacheFileState::kForeign;
    r.why = "it was tuned for " + theirs.describe() + " (file format " +
            std::to_string(static_cast<int>(version->as_number())) + "), not for this " + fp.describe();
    return r;
  }
  for (const JsonValue& item : entries->items()) {
    TuneKey key;
    TuneEntry e;
    if (!entry_from_json(item, &key, &e)) {
      r.entries.clear();
      r.why = "an entry is malformed";
      return r;
    }
    r.entries[key] = e;
  }
  r.state = CacheFileState::kLoaded;
  return r;
}

Status merge_into_cache_file(const std::string& path, const Fingerprint& fp, const TuneTable& updates,
                             TuneTable* merged) {
  INT8DIT_RETURN_IF_ERROR(make_dirs(parent_dir(path)));
  FileLock lock(path + ".lock");
  if (!lock.locked()) return Status(StatusCode::kInternal, lock.error() + ": set INT8DIT_CACHE to a writable path");
  CacheFileRead current = read_cache_file(path, fp);
  TuneTable table = current.state == CacheFileState::kLoaded ? std::move(current.entries) : TuneTable{};
  for (const auto& [key, e] : updates) table[key] = e;
  INT8DIT_RETURN_IF_ERROR(write_atomically(path, cache_file_text(fp, table)));
  if (merged) *merged = std::move(table);
  return Status::Ok();
}

}  // namespace int8dit::tune
