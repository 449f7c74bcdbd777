// TaskContext: what a handler sees of the task it runs, and Handler: the signature of handlers.
//
// A TaskContext lives on the worker's stack for one attempt; the handler borrows it and must not
// keep it past its return. All methods are safe to call from the handler's thread; the cancel
// token may also be read from threads the handler starts, while the handler runs.
#ifndef BMOS_ENGINE_TASK_CONTEXT_H_
#define BMOS_ENGINE_TASK_CONTEXT_H_

#include <atomic>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "storage/status.h"
#include "storage/task_record.h"

namespace bmos::engine {

namespace internal {
struct Task;
}
class EngineImpl;

// Set when the task is cancelled (Engine::Cancel) or its attempt runs past its timeout. A handler
// that does long work checks it and returns early, e.g. with Status::Cancelled.
class CancelToken {
 public:
  explicit CancelToken(const std::atomic<uint8_t>* flag) : flag_(flag) {}
  // Pairs with the release store in Cancel / the timeout: what the canceller wrote before is seen.
  bool cancelled() const { return flag_->load(std::memory_order_acquire) != 0; }

 private:
  const std::atomic<uint8_t>* flag_;  // owned by the task; outlives the attempt
};

class TaskContext {
 public:
  TaskContext(EngineImpl* engine, internal::Task* task, int attempt);

  const storage::TaskId& id() const;
  std::string id_string() const { return id().ToString(); }
  const std::string& name() const;
  const std::string& queue() const;
  storage::Priority priority() const;
  // 1 for the first attempt, 2 for the first retry, ...
  int attempt() const { return attempt_; }
  int max_retries() const;

  // The task's data as JSON text (an object), as it was enqueued.
  const std::string& data_json() const;
  // The task's data, parsed on first use (the no-op path never parses). If the text does not
  // parse (it always does for tasks enqueued through the engine) an empty object.
  const boost::json::value& data();

  const CancelToken& cancel_token() const { return token_; }
  bool cancelled() const { return token_.cancelled(); }

  // Records progress (clamped to [0, 1]) and an optional message, visible to Engine::Get.
  void ReportProgress(double fraction, std::string_view message = {});

 private:
  EngineImpl* engine_;
  internal::Task* task_;
  int attempt_;
  CancelToken token_;
  std::optional<boost::json::value> data_;
};

// What a handler returns: a JSON result (any JSON value), or an error. An error Status makes the
// attempt fail (retried while attempts remain), except:
//   - InvalidArgument: bad input stays bad, so the task is FAILED at once without retry;
//   - any error returned after Engine::Cancel set the token ends the task CANCELLED (a success
//     returned anyway ends it COMPLETED);
//   - after a timeout set the token, the attempt fails as "timed out after N ms (...)".
// A handler that throws counts as a failed attempt with the exception's text.
using HandlerResult = storage::Result<boost::json::value>;
using Handler = std::function<HandlerResult(TaskContext&)>;

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_TASK_CONTEXT_H_
