#include "engine/handlers/handlers.h"

#include <algorithm>
#include <exception>
#include <functional>

#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace json = boost::json;

namespace {

// The engine's view of a running task as the operations' Job.
class ContextJob final : public Job {
 public:
  explicit ContextJob(TaskContext* ctx) : ctx_(ctx) {}
  bool cancelled() const override { return ctx_->cancelled(); }
  void ReportProgress(double fraction, std::string_view message) override {
    ctx_->ReportProgress(fraction, message);
  }

 private:
  TaskContext* ctx_;
};

using Operation = std::function<Result<json::value>(const json::object&, Job&)>;

// Runs `op` on the task's data: checks that the data is an object and keeps exceptions (an
// allocation failure, a bug) from leaving the handler.
Handler Wrap(std::string name, Operation op) {
  return [name = std::move(name), op = std::move(op)](TaskContext& ctx) -> HandlerResult {
    const json::value& data = ctx.data();
    if (!data.is_object()) {
      return Status::InvalidArgument(name + ": the task data must be a JSON object");
    }
    ContextJob job(&ctx);
    try {
      return op(data.get_object(), job);
    } catch (const std::exception& e) {
      return Status::Internal(name + ": " + e.what());
    } catch (...) {
      return Status::Internal(name + ": unknown exception");
    }
  };
}

}  // namespace

std::vector<std::string> BmosHandlerNames() {
  std::vector<std::string> names = {"process_data",   "data_processing",   "check_data_quality",
                                    "train_model",    "batch_predictions", "extract_memory",
                                    "system_cleanup", "retrain_models",    "sync_inbox"};
  std::sort(names.begin(), names.end());
  return names;
}

storage::Status RegisterBmosHandlers(Engine& engine, const BmosHandlerOptions& options) {
  if (options.data_root.empty()) {
    return Status::InvalidArgument("RegisterBmosHandlers: data_root is required");
  }
  Result<DataRoot> root = DataRoot::Open(options.data_root);
  if (!root.ok()) return root.status();
  Workspace ws{*root, &engine.clock()};
  Engine* e = &engine;
  const std::vector<std::pair<std::string, Operation>> ops = {
      {"process_data", [ws](const json::object& d, Job& j) { return ProcessData(ws, d, j); }},
      {"data_processing", [ws](const json::object& d, Job& j) { return ProcessData(ws, d, j); }},
      {"check_data_quality",
       [ws](const json::object& d, Job& j) { return CheckDataQuality(ws, d, j); }},
      {"train_model", [ws](const json::object& d, Job& j) { return TrainModel(ws, d, j); }},
      {"batch_predictions",
       [ws](const json::object& d, Job& j) { return BatchPredictions(ws, d, j); }},
      {"extract_memory", [ws](const json::object& d, Job& j) { return ExtractMemory(ws, d, j); }},
      {"system_cleanup",
       [ws, e](const json::object& d, Job& j) { return SystemCleanup(ws, e->store(), d, j); }},
      {"retrain_models", [ws](const json::object& d, Job& j) { return RetrainModels(ws, d, j); }},
      {"sync_inbox", [ws](const json::object& d, Job& j) { return SyncInbox(ws, d, j); }},
  };
  HandlerOptions handler_options;
  handler_options.queue = options.queue;
  for (const auto& [name, op] : ops) {
    if (Status s = engine.RegisterHandler(name, Wrap(name, op), handler_options); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace bmos::engine::handlers
