// int8dit: Status, the error value every public entry point returns.
// A library never exits the process: every failure comes back as a Status whose message says
// what was wrong and what to do about it.
#pragma once

#include <string>
#include <utility>

namespace int8dit {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // a caller error: the message names the argument and the fix
  kNotSupported,     // valid request that this build or this GPU cannot serve (e.g. below sm_80)
  kNotImplemented,   // valid request whose kernel is not written yet for this GPU
  kCudaError,        // the CUDA runtime reported an error; the message carries its string
  kInternal,         // a bug in int8dit: please report it
};

const char* to_string(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: K = 1000 must be a multiple of 16: pad the input features"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace int8dit
