#include "api/test_handlers.h"

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace bmos::api {
namespace {

using engine::HandlerResult;
using engine::TaskContext;
using storage::Status;

// The integer field `key` of the task data, or `fallback` when absent; nullopt when it is there
// but not an integer within [0, max].
std::optional<int64_t> IntField(TaskContext& ctx, std::string_view key, int64_t fallback,
                                int64_t max) {
  const boost::json::value& data = ctx.data();
  if (!data.is_object()) return fallback;
  const boost::json::value* v = data.as_object().if_contains(key);
  if (v == nullptr) return fallback;
  if (!v->is_int64() && !v->is_uint64()) return std::nullopt;
  const int64_t n = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
  if (n < 0 || n > max) return std::nullopt;
  return n;
}

}  // namespace

storage::Status RegisterTestHandlers(engine::Engine& engine) {
  if (Status s = engine.RegisterHandler(
          "bmos.noop", [](TaskContext&) -> HandlerResult { return boost::json::value(nullptr); });
      !s.ok()) {
    return s;
  }
  if (Status s = engine.RegisterHandler(
          "bmos.sleep",
          [](TaskContext& ctx) -> HandlerResult {
            const std::optional<int64_t> ms = IntField(ctx, "ms", 0, 3'600'000);
            if (!ms) return Status::InvalidArgument("bmos.sleep: ms must be an integer 0..3600000");
            const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(*ms);
            while (std::chrono::steady_clock::now() < end) {
              if (ctx.cancelled()) return Status::Cancelled("bmos.sleep: cancelled");
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            return boost::json::value{{"slept_ms", *ms}};
          });
      !s.ok()) {
    return s;
  }
  if (Status s = engine.RegisterHandler(
          "bmos.fail",
          [](TaskContext& ctx) -> HandlerResult {
            const std::optional<int64_t> times = IntField(ctx, "times", 1, 1000);
            if (!times)
              return Status::InvalidArgument("bmos.fail: times must be an integer 0..1000");
            if (ctx.attempt() <= *times) {
              return Status::Internal("bmos.fail: attempt " + std::to_string(ctx.attempt()) +
                                      " of " + std::to_string(*times) + " planned failures");
            }
            return boost::json::value{{"attempts", ctx.attempt()}};
          });
      !s.ok()) {
    return s;
  }
  return engine.RegisterHandler("bmos.echo",
                                [](TaskContext& ctx) -> HandlerResult { return ctx.data(); });
}

}  // namespace bmos::api
