// The BMOS task handlers: real data work behind the task names BMOS enqueues.
//
//   process_data (alias data_processing)  clean a CSV / JSON Lines table
//   check_data_quality                    per-column quality report and score
//   train_model                           versioned linear / ridge model (Eigen)
//   batch_predictions                     apply a model to every row of a table
//   extract_memory                        recurring themes and trends of customer feedback
//   system_cleanup                        purge old tasks, stale temporary files; compact
//   retrain_models                        retrain models whose data changed
//   sync_inbox                            process and quality-check new CSV files in inbox/
//
// Every file path in task data is relative to the BMOS data root and may not leave it. Each
// handler returns a JSON object describing what it did; operations.h documents the fields of
// each task's data and result, and the errors (bad input is InvalidArgument, which fails the
// task at once without retry).
//
// This library sits beside the engine: the engine core never includes it. An application links
// bmos_handlers and calls RegisterBmosHandlers once after Engine::Open:
//
//   auto engine = bmos::engine::Engine::Open(options);   // with a group serving "ml"
//   bmos::engine::handlers::BmosHandlerOptions h{.data_root = "/var/lib/bmos/data"};
//   if (auto s = RegisterBmosHandlers(**engine, h); !s.ok()) ...
//
// Thread-safety: the handlers may run on any number of workers at once (see operations.h for
// what they share).
#ifndef BMOS_ENGINE_HANDLERS_HANDLERS_H_
#define BMOS_ENGINE_HANDLERS_HANDLERS_H_

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "storage/status.h"

namespace bmos::engine::handlers {

struct BmosHandlerOptions {
  // The BMOS data root that task paths are relative to; created (with its parents) if missing.
  // Required.
  std::filesystem::path data_root{};
  // The queue the handlers' tasks go to unless an enqueue names another. It must be served by a
  // worker group of the engine (BMOS runs an "ml" group so that long training cannot hold up
  // short tasks). Default: "ml".
  std::string queue = "ml";
};

// The task names RegisterBmosHandlers registers, sorted.
std::vector<std::string> BmosHandlerNames();

// Registers the handlers listed above on `engine`. Errors: InvalidArgument for an empty data
// root, a data root that is not a folder, a queue no group serves, or a name already registered
// (nothing is registered then when the data root or the queue is wrong; a name clash can leave
// the handlers before it registered); IOError when the data root cannot be created.
// `engine` keeps the handlers; they borrow it (system_cleanup uses its store and clock).
storage::Status RegisterBmosHandlers(Engine& engine, const BmosHandlerOptions& options);

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_HANDLERS_H_
