// Status and Result<T>: how every fallible call in the project reports failure.
//
// Errors are values: no exception crosses a bmos API. A Status is either OK or carries one of
// the codes below and a human-readable message. Result<T> holds a T on success and a non-OK
// Status otherwise. Both are cheap to move and safe to use from any thread (they are values).
//
// Codes and what they mean at every API of the project:
//   kInvalidArgument     the caller's input is wrong (unknown task name, bad priority, bad option);
//                        the HTTP layer answers 422.
//   kNotFound            no object with that id; HTTP 404.
//   kFailedPrecondition  the operation is impossible in the object's current state (cancelling a
//                        terminal task); HTTP 409.
//   kUnavailable         the engine is stopping or stopped; HTTP 503.
//   kDeadlineExceeded    a wait ran past its deadline; the operation itself may still complete.
//   kCancelled           the work observed its cancellation token.
//   kIOError             the store could not read or write; nothing was acknowledged.
//   kCorruption          stored data could not be decoded.
//   kNotSupported        the build or configuration lacks the feature asked for.
//   kInternal            a bug: an invariant did not hold.
#ifndef BMOS_STORAGE_STATUS_H_
#define BMOS_STORAGE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bmos::storage {

class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kInvalidArgument,
    kNotFound,
    kFailedPrecondition,
    kUnavailable,
    kDeadlineExceeded,
    kCancelled,
    kIOError,
    kCorruption,
    kNotSupported,
    kInternal,
  };

  // An OK status.
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
  static Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status NotSupported(std::string m) { return {Code::kNotSupported, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NotFound: task 0190... does not exist"; "OK" for success.
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// The name of a code: "InvalidArgument", "NotFound", ...
std::string_view CodeName(Status::Code code);

// A T on success, a non-OK Status on failure.
template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok().
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(value_).ok());
  }
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }

  // The error; an OK Status when ok().
  Status status() const { return ok() ? Status() : std::get<Status>(value_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<Status, T> value_;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_STATUS_H_
