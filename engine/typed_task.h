// TaskDef<Args>: a typed task, the C++ counterpart of the first design's
// `@async_task(queue_name=..., priority=...)` decorator.
//
// Define it once with a name, defaults and a function of (const Args&, TaskContext&); then
// `Delay(args)` or `ApplyAsync(args, options)` enqueue it. Args travel as JSON through Boost.JSON's
// conversion (give Args a `tag_invoke` for value_from/value_to, or use a described struct).
// Arguments that do not convert back fail the attempt without retry (InvalidArgument).
//
//   struct Clean { std::string file; };   // + tag_invoke value_from / value_to
//   auto clean = TaskDef<Clean>::Define(engine, "clean", {.queue = "default"},
//       [](const Clean& args, TaskContext& ctx) -> HandlerResult { ... });
//   auto id = clean->Delay({.file = "sales.csv"});
//
// A TaskDef borrows the engine, which must outlive it. Copyable; thread-safe like Engine.
#ifndef BMOS_ENGINE_TYPED_TASK_H_
#define BMOS_ENGINE_TYPED_TASK_H_

#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "engine/engine.h"

namespace bmos::engine {

// Per-call overrides of a typed task's defaults (apply_async's keyword arguments).
struct CallOptions {
  std::string queue{};
  std::optional<Priority> priority{};
  std::optional<int32_t> max_retries{};
  std::optional<std::chrono::milliseconds> timeout{};
  std::optional<int64_t> eta_ms{};
  std::optional<std::chrono::milliseconds> delay{};
  std::string unique_key{};
};

template <typename Args>
class TaskDef {
 public:
  using Fn = std::function<HandlerResult(const Args&, TaskContext&)>;

  // Registers `fn` under `name` with `options` as the defaults. Errors as RegisterHandler.
  static Result<TaskDef> Define(Engine& engine, std::string name, HandlerOptions options, Fn fn) {
    Handler handler = [fn = std::move(fn)](TaskContext& ctx) -> HandlerResult {
      Args args{};
      try {
        args = boost::json::value_to<Args>(ctx.data());
      } catch (const std::exception& e) {
        return Status::InvalidArgument(std::string("task arguments do not match: ") + e.what());
      }
      return fn(args, ctx);
    };
    Status s = engine.RegisterHandler(name, std::move(handler), options);
    if (!s.ok()) return s;
    return TaskDef(&engine, std::move(name));
  }

  const std::string& name() const { return name_; }

  // Enqueues with the defaults. Errors as Engine::Enqueue.
  Result<TaskId> Delay(const Args& args) const {
    Result<EnqueueResult> r = ApplyAsync(args, CallOptions{});
    if (!r.ok()) return r.status();
    return r->id;
  }

  // Enqueues with per-call overrides. Errors as Engine::Enqueue.
  Result<EnqueueResult> ApplyAsync(const Args& args, CallOptions options) const {
    EnqueueRequest request{};
    request.name = name_;
    boost::json::value v = boost::json::value_from(args);
    if (!v.is_object()) {
      return Status::InvalidArgument("task arguments must serialise to a JSON object");
    }
    request.data = std::move(v.as_object());
    request.queue = std::move(options.queue);
    request.priority = options.priority;
    request.max_retries = options.max_retries;
    request.timeout = options.timeout;
    request.eta_ms = options.eta_ms;
    request.delay = options.delay;
    request.unique_key = std::move(options.unique_key);
    return engine_->Enqueue(std::move(request));
  }

 private:
  TaskDef(Engine* engine, std::string name) : engine_(engine), name_(std::move(name)) {}

  Engine* engine_;  // must outlive this TaskDef
  std::string name_{};
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_TYPED_TASK_H_
