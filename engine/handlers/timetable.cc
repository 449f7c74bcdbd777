#include "engine/handlers/timetable.h"

#include <fstream>
#include <system_error>
#include <utility>

namespace bmos::engine::handlers {
namespace {

JobSpec CronJob(std::string id, std::string function, boost::json::object trigger,
                boost::json::object data = {}) {
  JobSpec spec;
  spec.name = id;
  spec.id = std::move(id);
  spec.function = std::move(function);
  spec.type = TriggerType::kCron;
  spec.trigger_config = std::move(trigger);
  spec.data = std::move(data);
  // A long retraining must not be started twice at once; a run missed by minutes (a restart
  // around 02:00) still runs.
  spec.max_instances = 1;
  spec.misfire_grace_seconds = 3600;
  return spec;
}

}  // namespace

std::vector<JobSpec> DefaultTimetable() {
  std::vector<JobSpec> jobs;
  jobs.push_back(CronJob("daily_model_retrain", "retrain_models", {{"hour", 2}, {"minute", 0}}));
  jobs.push_back(CronJob("hourly_data_sync", "sync_inbox", {{"minute", 0}}));
  jobs.back().misfire_grace_seconds = 600;
  jobs.push_back(CronJob("weekly_cleanup", "system_cleanup",
                         {{"day_of_week", "sun"}, {"hour", 3}, {"minute", 0}},
                         {{"older_than_days", 30}, {"dry_run", false}}));
  return jobs;
}

storage::Result<std::vector<std::string>> InstallDefaultTimetable(
    Scheduler& scheduler, const std::filesystem::path& marker) {
  std::error_code ec;
  if (!marker.empty() && std::filesystem::exists(marker, ec)) return std::vector<std::string>{};
  std::vector<std::string> added;
  for (JobSpec& spec : DefaultTimetable()) {
    const std::string id = spec.id;
    storage::Result<JobInfo> r = scheduler.Add(std::move(spec));
    if (r.ok()) {
      added.push_back(id);
    } else if (r.status().code() != storage::Status::Code::kFailedPrecondition ||
               !scheduler.Get(id).ok()) {
      return r.status();  // not "the id is taken"
    }
  }
  if (!marker.empty()) {
    std::ofstream f(marker, std::ios::trunc);
    f << "The default timetable was installed here; delete this file to install it again.\n";
    if (!f) {
      return storage::Status::IOError("cannot write " + marker.string() +
                                      " (the default timetable is installed, the marker is not)");
    }
  }
  return added;
}

}  // namespace bmos::engine::handlers
