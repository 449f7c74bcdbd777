// The BMOS task handlers as plain functions: what each registered handler runs, callable without
// an engine (tests, tools, other handlers). handlers.h registers them on an Engine.
//
// Every operation takes the task's data (a JSON object; the fields are listed at each function),
// a Workspace (the data root and the clock) and a Job (progress and cancellation), and returns
// a JSON object saying what it did, or an error:
//   InvalidArgument  bad task data, a path that leaves the data root, a missing or malformed
//                    input file (the message names the file, and for bad data the line and
//                    column); retrying cannot help, so the engine fails the task at once.
//   Cancelled        the job was cancelled; nothing was left half-written.
//   IOError          a file could not be read or written for another reason (disk full, ...).
//   NotFound         a model or model version that does not exist.
// Outputs are written to a temporary file beside the target and renamed over it, so a reader
// never sees a partial output and a failure leaves none behind (see data_root.h).
//
// Thread-safety: operations may run concurrently on different files. Operations on the same
// model (train_model, retrain_models) serialise their version bookkeeping on a process-wide lock.
// Two operations writing the same output file at once each write a whole file; the later rename
// wins.
#ifndef BMOS_ENGINE_HANDLERS_OPERATIONS_H_
#define BMOS_ENGINE_HANDLERS_OPERATIONS_H_

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string_view>

#include "engine/clock.h"
#include "engine/handlers/data_root.h"
#include "storage/status.h"
#include "storage/task_store.h"

namespace bmos::engine::handlers {

using storage::Result;
using storage::Status;

// What an operation reports to and asks of the task running it. The engine's TaskContext is
// wrapped in one by handlers.cc; tests use their own.
class Job {
 public:
  virtual ~Job() = default;
  // True once the work should stop; an operation then returns Status::Cancelled soon (it checks
  // between rows, files and batches).
  virtual bool cancelled() const = 0;
  // Progress in [0, 1] and a short message.
  virtual void ReportProgress(double fraction, std::string_view message) = 0;
};

// A Job that is never cancelled and ignores progress.
class NullJob final : public Job {
 public:
  bool cancelled() const override { return false; }
  void ReportProgress(double, std::string_view) override {}
};

// Where operations read and write, and the time they stamp on what they write.
struct Workspace {
  DataRoot root;
  // The time source (creation times of models and reports, the cleanup cutoff). Must outlive
  // every operation using it. Never null.
  Clock* clock = SystemClock();
};

// process_data (alias data_processing): cleans a CSV or JSON Lines table.
//   data_source      path of the input (required)
//   processing_type  "standard" (default) or "strict"
//   output           path of the cleaned CSV; default "<stem>_cleaned.csv" beside the input
// Trims cells; normalises numbers ("1,234.5", "1.234,5" -> 1234.5) and dates (-> YYYY-MM-DD);
// infers each column's type from the majority of its non-empty values; drops blank rows and
// exact duplicates (after normalisation). A cell that does not fit its column's type is invalid.
// strict: rows with an invalid or a missing cell are dropped. standard: every row is kept,
// missing numeric cells get the column's median (rounded for integer columns) and a last column
// "_invalid_columns" lists the row's invalid columns (";"-separated).
// Result: data_source, output, processing_type, rows_in, rows_out, blank_rows_removed,
// duplicates_removed, invalid_rows (rows with an invalid cell), incomplete_rows (rows with a
// missing cell), rows_dropped (strict), filled_cells, columns [{name, type, missing, invalid,
// filled}] (missing and invalid counted over the rows left after removing duplicates).
Result<boost::json::value> ProcessData(const Workspace& ws, const boost::json::object& data,
                                       Job& job);

// check_data_quality: a per-column quality report of a CSV or JSON Lines table.
//   data_source  path of the input (required)
//   output       path of the report; default "<stem>.quality.json" beside the input
// Result (also written to `output`): data_source, report, rows, columns, duplicate_rows,
// generated_at, score, score_parts, issues [strings], column_stats [{name, type, missing,
// missing_ratio, distinct, invalid, and for numeric columns min, max, mean, std, median, mad,
// outliers, outlier_examples}].
// Outliers: robust z = 0.6745 (x - median) / MAD, |z| > 3.5 (Iglewicz and Hoaglin); when the MAD
// is 0 the mean absolute deviation stands in (z = (x - median) / (1.2533 MeanAD)); when both are
// 0 there are none.
// Score = 100 (1 - 0.4 m - 0.2 d - 0.3 v - 0.1 o), clamped to [0, 100] and rounded to one
// decimal, where m = missing cells / all cells, d = duplicate rows / rows, v = invalid cells /
// non-empty cells, o = outlier cells / non-empty numeric cells.
Result<boost::json::value> CheckDataQuality(const Workspace& ws, const boost::json::object& data,
                                            Job& job);

// train_model: fits a linear model with Eigen and versions it under models/<model_name>/.
//   data_source  path of the training table (required)
//   target       the column to predict (required)
//   model_name   [A-Za-z0-9_.-], 1..64 characters, not starting with '.' (required)
//   features     column names; default: every numeric column except the target (inferred from
//                the first 1000 rows)
//   model_type   "linear" (default; least squares by column-pivoting Householder QR) or "ridge"
//                (LDLT of Z'Z + alpha I on standardised features; the intercept is not penalised)
//   alpha        ridge strength, >= 0; default 1.0
//   test_ratio   share of rows held out for validation, [0, 0.9]; default 0.2. The split is
//                deterministic: a row goes to validation when a hash of its text (fixed seed)
//                falls below the ratio, so equal rows always land on the same side.
// Rows whose target or a feature is missing or not a number are skipped and counted. Writes
// models/<model_name>/v<N>.json (N = 1 + the highest existing version) and makes it current
// (models/<model_name>/current.json, a pointer) when its validation RMSE is not worse than the
// current version's; the first version is always current.
// Result: model_name, version, model_file, promoted, previous_version (the current version
// before, or null), current_version, model_type, target, features, coefficients {feature:
// value}, intercept, metrics {train, validation: {rows, r2, rmse, mae}}, rows_used,
// rows_skipped, skipped_lines (the first few), warnings.
Result<boost::json::value> TrainModel(const Workspace& ws, const boost::json::object& data,
                                      Job& job);

// batch_predictions: applies a model to every row of a table.
//   model_name   a trained model (required)
//   version      a version number; default the current one
//   data_source  path of the input (required)
//   output       path of the output CSV; default "<stem>_predictions.csv" beside the input
// The output holds the input's columns plus "prediction" ("prediction_v<N>" if the input already
// has a "prediction" column). A row with a missing or non-numeric feature gets an empty
// prediction and is reported; it is never filled with zero.
// Result: model_name, version, data_source, output, prediction_column, rows, predicted,
// missing_feature_rows, missing_feature_lines (the first 10), missing_by_feature {feature: n}.
Result<boost::json::value> BatchPredictions(const Workspace& ws, const boost::json::object& data,
                                            Job& job);

// extract_memory: recurring themes of customer feedback ("enterprise memory").
//   feedback_source  JSON Lines, one object per line: text (string, required), rating (number
//                    or null), time (string), category (string) (required)
//   top              how many themes to return, 1..200; default 20
// Themes are word unigrams and bigrams (stop words removed) of space-separated text and
// character bigrams of CJK text, counted once per feedback item. A theme recurs when at least 2
// items mention it. The snapshot of this extraction is saved as memory/themes.json; the one it
// replaces becomes memory/themes.previous.json, and trends compare each theme's share of items
// with that previous snapshot.
// Result: feedback_source, items, rated_items, average_rating, period {from, to} (the earliest
// and latest `time`, compared as text: ISO 8601 sorts), categories {name: {items,
// average_rating}}, distinct_themes, recurring_themes, themes (the `top` most mentioned:
// [{theme, script ("latin" or "cjk"), count, share, average_rating, previous_share, trend}]),
// rising (share grew), falling (share shrank, including themes gone), new_themes (recurring now,
// absent before), lowest_rated (by average rating, 2+ rated items), insights [strings],
// snapshot, previous_snapshot (its generated_at, or null), warnings.
Result<boost::json::value> ExtractMemory(const Workspace& ws, const boost::json::object& data,
                                         Job& job);

// system_cleanup: purges old terminal tasks from `store`, removes stale temporary files of the
// handlers, and compacts a RocksDB store.
//   older_than_days  number >= 0 (required): tasks completed before now - this are purged
//   dry_run          bool, default false: only count what would be removed
// Temporary files are the handlers' own (".<name>.bmos-tmp-<hex>", see data_root.h) under the
// data root, last modified more than an hour ago (by the file system's clock).
// Result: dry_run, older_than_days, cutoff, tasks_matching (a dry run counts them with List; a
// real run reports what it purged), tasks_purged (0 in a dry run), temp_files_matching,
// temp_files_removed, temp_bytes_matching, temp_bytes_freed, temp_errors, store {kind ("rocksdb",
// "memory", "other"), compacted, bytes_before, bytes_after, bytes_freed (RocksDB:
// ApproximateDiskBytes before and after CompactAll)}, bytes_freed (temporary files plus store).
// `store` must outlive the call (the engine's store).
Result<boost::json::value> SystemCleanup(const Workspace& ws, storage::TaskStore& store,
                                         const boost::json::object& data, Job& job);

// retrain_models: retrains, with the same parameters (and the features the current version
// resolved), every model under models/ whose data source changed (size or modification time
// differ and the content hash differs) since its current version was trained. A model whose
// latest, unpromoted version was already trained on the present content is skipped rather than
// trained again. No fields.
// Result: checked, retrained [{model_name, previous_version, version, promoted, validation_rmse}],
// unchanged [names], skipped [{model_name, reason}], failed [{model_name, error}].
Result<boost::json::value> RetrainModels(const Workspace& ws, const boost::json::object& data,
                                         Job& job);

// sync_inbox: processes every CSV file in inbox/ (names starting with '.' are skipped: write a
// file under a dot-name and rename it when complete). For each file "x.csv": process_data
// (standard) into processed/x_cleaned.csv, check_data_quality of the input into
// processed/x.quality.json, then the input moves to processed/x.csv. A file that fails moves to
// failed/x.csv with its error in failed/x.csv.error.txt, and what was written for it is removed.
// Names already taken in processed/ or failed/ get a suffix ("x-2"). No fields.
// Result: processed [{file, moved_to, cleaned, quality_report, rows_in, rows_out, score}],
// failed [{file, moved_to, error}].
Result<boost::json::value> SyncInbox(const Workspace& ws, const boost::json::object& data,
                                     Job& job);

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_OPERATIONS_H_
