#include "engine/task_context.h"

#include <boost/json/parse.hpp>

#include "engine/internal/engine_impl.h"
#include "engine/internal/task.h"

namespace bmos::engine {

TaskContext::TaskContext(EngineImpl* engine, internal::Task* task, int attempt)
    : engine_(engine), task_(task), attempt_(attempt), token_(&task->cancel_flag) {}

// The spec is immutable after enqueue, so reading it needs no lock.
const storage::TaskId& TaskContext::id() const { return task_->rec.spec->id; }
const std::string& TaskContext::name() const { return task_->rec.spec->name; }
const std::string& TaskContext::queue() const { return task_->rec.spec->queue; }
storage::Priority TaskContext::priority() const { return task_->rec.spec->priority; }
int TaskContext::max_retries() const { return task_->rec.spec->max_retries; }
const std::string& TaskContext::data_json() const { return task_->rec.spec->data_json; }

const boost::json::value& TaskContext::data() {
  if (!data_) {
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(task_->rec.spec->data_json, ec);
    data_.emplace(ec ? boost::json::value(boost::json::object()) : std::move(v));
  }
  return *data_;
}

void TaskContext::ReportProgress(double fraction, std::string_view message) {
  engine_->ReportProgress(task_, fraction, message);
}

}  // namespace bmos::engine
