// The default timetable of BMOS: the scheduled jobs a fresh server installs on its first start.
//
//   daily_model_retrain   cron 02:00 every day     retrain_models  (retrain every model whose
//                                                                    data changed)
//   hourly_data_sync      cron minute 0 every hour sync_inbox      (clean and check new CSV files
//                                                                    dropped into inbox/)
//   weekly_cleanup        cron Sunday 03:00        system_cleanup  {"older_than_days": 30}
// The times are in the scheduler's default time zone (bmos-taskd --timezone). The jobs are
// ordinary jobs: paused, resumed, run, replaced (PUT) or deleted through the API like any other.
#ifndef BMOS_ENGINE_HANDLERS_TIMETABLE_H_
#define BMOS_ENGINE_HANDLERS_TIMETABLE_H_

#include <filesystem>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "storage/status.h"

namespace bmos::engine::handlers {

// The default jobs (ids as above), ready for Scheduler::Add.
std::vector<JobSpec> DefaultTimetable();

// Installs the default jobs once. With a `marker` path: when the file exists nothing is done (an
// edited or deleted default job stays as the user left it); else the jobs are added and the file
// is created. Without one (empty path: a store that keeps nothing across restarts) the jobs are
// added. Either way a job whose id is taken is left alone, so installing twice adds nothing.
// Returns the ids added. Errors: what Scheduler::Add returned for another reason (a default job
// naming a task that is not registered: InvalidArgument), or IOError for the marker.
storage::Result<std::vector<std::string>> InstallDefaultTimetable(
    Scheduler& scheduler, const std::filesystem::path& marker);

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_TIMETABLE_H_
