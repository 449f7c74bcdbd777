// train_model, batch_predictions and retrain_models (operations.h has the contracts).
//
// Layout under the data root:
//   models/<name>/v<N>.json    one trained version: parameters, coefficients in the data's own
//                              units, standardisation, metrics, the data source's fingerprint
//   models/<name>/current.json {"version": N, ...}: the version predictions use by default
// Version numbers and promotion are decided under one process-wide lock, so concurrent trainings
// of a model get distinct versions and promotion compares against the latest current version.

#include <Eigen/Dense>
#include <algorithm>
#include <boost/json/parse.hpp>
#include <charconv>
#include <cmath>
#include <mutex>

#include "engine/handlers/csv.h"
#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/io.h"
#include "engine/handlers/internal/table.h"
#include "engine/handlers/internal/values.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

constexpr std::string_view kFormat = "bmos.linear_model/1";
constexpr size_t kInferRows = 1000;   // rows read to infer the default features
constexpr size_t kLineExamples = 10;  // line numbers listed for skipped rows
constexpr uint64_t kSplitSeed = 0x6A09E667F3BCC909ull;

std::mutex& ModelsMutex() {
  static std::mutex mu;
  return mu;
}

Status ValidateModelName(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                  });
  if (ok) return Status::Ok();
  return Status::InvalidArgument("model_name '" + std::string(name) +
                                 "' must be 1 to 64 of A-Z a-z 0-9 _ . - and not start with '.'");
}

std::string ModelDir(std::string_view name) { return "models/" + std::string(name); }

// A number read from a model file (written as an integer when it is one).
std::optional<double> AsDouble(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

// Version numbers of models/<name>/v<N>.json.
std::vector<int64_t> ListVersions(const fs::path& dir) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() < 7 || name[0] != 'v' || name.substr(name.size() - 5) != ".json") continue;
    int64_t n = 0;
    const char* first = name.data() + 1;
    const char* last = name.data() + name.size() - 5;
    const auto [p, err] = std::from_chars(first, last, n);
    if (err == std::errc() && p == last && n > 0) versions.push_back(n);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

Result<json::object> ReadJsonObject(const fs::path& file, const std::string& display) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(file, display));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return Status::Corruption(display + ": not a JSON object" + (ec ? ": " + ec.message() : ""));
  }
  return std::move(v.as_object());
}

// A trained version as read back from its file.
struct LoadedModel {
  int64_t version = 0;
  std::string file;  // display path
  std::vector<std::string> features;
  std::vector<double> coefficients;
  double intercept = 0;
  std::optional<double> selection_rmse;
  json::object doc;
};

Result<LoadedModel> ParseModel(json::object doc, const std::string& display) {
  LoadedModel m;
  const auto bad = [&](std::string_view what) {
    return Status::Corruption(display + ": " + std::string(what));
  };
  if (const json::value* f = doc.if_contains("format");
      f == nullptr || *f != json::value(kFormat)) {
    return bad("not a BMOS model file (format is not " + std::string(kFormat) + ")");
  }
  const json::value* version = doc.if_contains("version");
  if (version == nullptr || !version->is_int64()) return bad("no version");
  m.version = version->get_int64();
  const json::value* features = doc.if_contains("features");
  const json::value* coefs = doc.if_contains("coefficients");
  if (features == nullptr || !features->is_array() || coefs == nullptr || !coefs->is_object()) {
    return bad("no features or coefficients");
  }
  for (const json::value& f : features->get_array()) {
    if (!f.is_string()) return bad("a feature name is not a string");
    m.features.emplace_back(f.get_string());
    std::optional<double> c = AsDouble(coefs->get_object().if_contains(f.get_string()));
    if (!c) return bad("no coefficient for feature '" + m.features.back() + "'");
    m.coefficients.push_back(*c);
  }
  std::optional<double> intercept = AsDouble(doc.if_contains("intercept"));
  if (!intercept) return bad("no intercept");
  m.intercept = *intercept;
  m.selection_rmse = AsDouble(doc.if_contains("selection_rmse"));
  m.file = display;
  m.doc = std::move(doc);
  return m;
}

// The current version of `name`, or nullopt when it has none. REQUIRES: name validated.
Result<std::optional<LoadedModel>> LoadCurrent(const Workspace& ws, std::string_view name) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path pointer,
                                 ws.root.Resolve(ModelDir(name) + "/current.json", "model_name"));
  std::error_code ec;
  if (!fs::exists(pointer, ec)) return std::optional<LoadedModel>();
  const std::string pointer_display = ws.root.Relative(pointer);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(json::object p, ReadJsonObject(pointer, pointer_display));
  const json::value* version = p.if_contains("version");
  if (version == nullptr || !version->is_int64()) {
    return Status::Corruption(pointer_display + ": no version");
  }
  const std::string file = ModelDir(name) + "/v" + std::to_string(version->get_int64()) + ".json";
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path path, ws.root.Resolve(file, "model_name"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(json::object doc, ReadJsonObject(path, file));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(LoadedModel m, ParseModel(std::move(doc), file));
  return std::optional<LoadedModel>(std::move(m));
}

Result<LoadedModel> LoadVersion(const Workspace& ws, std::string_view name,
                                std::optional<int64_t> version) {
  if (!version) {
    BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<LoadedModel> current, LoadCurrent(ws, name));
    if (!current) {
      return Status::NotFound("model '" + std::string(name) +
                              "' has no current version (train it "
                              "first)");
    }
    return std::move(*current);
  }
  const std::string file = ModelDir(name) + "/v" + std::to_string(*version) + ".json";
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path path, ws.root.Resolve(file, "model_name"));
  Result<json::object> doc = ReadJsonObject(path, file);
  if (!doc.ok()) {
    if (doc.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("model '" + std::string(name) + "' has no version " +
                              std::to_string(*version));
    }
    return doc.status();
  }
  return ParseModel(std::move(doc).value(), file);
}

// ---------------------------------------------------------------------------------------------
// Fitting

struct Metrics {
  uint64_t rows = 0;
  double r2 = 0, rmse = 0, mae = 0;
  json::object ToJson() const {
    return {{"rows", rows},
            {"r2", JsonNumber(r2)},
            {"rmse", JsonNumber(rmse)},
            {"mae", JsonNumber(mae)}};
  }
};

// Rows of p features and a target, row-major: x[i * p + j], y[i].
struct Samples {
  std::vector<double> x;
  std::vector<double> y;
  size_t rows() const { return y.size(); }
};

Metrics Evaluate(const Samples& s, size_t p, const std::vector<double>& coef, double intercept) {
  Metrics m;
  m.rows = s.rows();
  if (m.rows == 0) return m;
  double mean = 0;
  for (const double y : s.y) mean += y;
  mean /= static_cast<double>(m.rows);
  double sse = 0, sst = 0, sae = 0;
  for (size_t i = 0; i < m.rows; ++i) {
    double pred = intercept;
    for (size_t j = 0; j < p; ++j) pred += coef[j] * s.x[i * p + j];
    const double e = s.y[i] - pred;
    sse += e * e;
    sae += std::fabs(e);
    sst += (s.y[i] - mean) * (s.y[i] - mean);
  }
  const auto n = static_cast<double>(m.rows);
  m.rmse = std::sqrt(sse / n);
  m.mae = sae / n;
  m.r2 = sst > 0 ? 1 - sse / sst : (sse == 0 ? 1.0 : 0.0);
  return m;
}

struct Fit {
  std::vector<double> coefficients;  // original units
  double intercept = 0;
  std::vector<double> mean, scale;  // standardisation of the features
  std::vector<std::string> warnings;
};

// Least squares (QR with column pivoting) or ridge (LDLT of Z'Z + alpha I) on standardised
// features with a centred target; the intercept is not penalised.
Fit FitLinear(const Samples& s, const std::vector<std::string>& features, bool ridge,
              double alpha) {
  const size_t n = s.rows();
  const size_t p = features.size();
  Fit fit;
  fit.mean.assign(p, 0);
  fit.scale.assign(p, 1);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < p; ++j) fit.mean[j] += s.x[i * p + j];
  }
  for (double& m : fit.mean) m /= static_cast<double>(n);
  std::vector<double> var(p, 0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < p; ++j) {
      const double d = s.x[i * p + j] - fit.mean[j];
      var[j] += d * d;
    }
  }
  for (size_t j = 0; j < p; ++j) {
    const double sd = std::sqrt(var[j] / static_cast<double>(n));
    if (sd > 0 && std::isfinite(sd)) {
      fit.scale[j] = sd;
    } else {
      fit.warnings.push_back("feature '" + features[j] +
                             "' is constant in the training rows; its coefficient is 0");
    }
  }
  double y_mean = 0;
  for (const double y : s.y) y_mean += y;
  y_mean /= static_cast<double>(n);

  Eigen::MatrixXd z(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(p));
  Eigen::VectorXd yc(static_cast<Eigen::Index>(n));
  for (size_t i = 0; i < n; ++i) {
    const auto r = static_cast<Eigen::Index>(i);
    for (size_t j = 0; j < p; ++j) {
      z(r, static_cast<Eigen::Index>(j)) = (s.x[i * p + j] - fit.mean[j]) / fit.scale[j];
    }
    yc(r) = s.y[i] - y_mean;
  }
  Eigen::VectorXd beta;
  if (ridge && alpha > 0) {
    Eigen::MatrixXd a = z.transpose() * z;
    a.diagonal().array() += alpha;
    beta = a.ldlt().solve(z.transpose() * yc);
  } else {
    Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(z);
    if (qr.rank() < static_cast<Eigen::Index>(p)) {
      fit.warnings.push_back("the features are linearly dependent (rank " +
                             std::to_string(qr.rank()) + " of " + std::to_string(p) +
                             "); some coefficients were set to 0");
    }
    beta = qr.solve(yc);
  }
  fit.coefficients.resize(p);
  fit.intercept = y_mean;
  for (size_t j = 0; j < p; ++j) {
    const double b = beta(static_cast<Eigen::Index>(j));
    fit.coefficients[j] = std::isfinite(b) ? b / fit.scale[j] : 0;
    fit.intercept -= fit.coefficients[j] * fit.mean[j];
  }
  return fit;
}

// Whether a row goes to the validation split: a hash of its cells (fixed seed) below the ratio.
bool InValidation(const std::vector<std::string>& values, double test_ratio) {
  if (test_ratio <= 0) return false;
  Fnv1a64 h;
  h.Update(std::string_view(reinterpret_cast<const char*>(&kSplitSeed), sizeof(kSplitSeed)));
  for (const std::string& v : values) {
    h.Update(Trim(v));
    h.Update("\x1f");
  }
  uint64_t x = h.value();
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<double>(x >> 11) * 0x1.0p-53 < test_ratio;
}

struct TrainParams {
  std::string model_name;
  std::string data_source;
  std::string target;
  std::optional<std::vector<std::string>> features;
  bool ridge = false;
  double alpha = 1.0;
  double test_ratio = 0.2;
};

Result<TrainParams> ParseTrainParams(const json::object& data) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields, TaskData::Parse("train_model", data,
                                       {"data_source", "target", "features", "model_type", "alpha",
                                        "test_ratio", "model_name"}));
  TrainParams p;
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.model_name, fields.String("model_name"));
  BMOS_HANDLERS_RETURN_IF_ERROR(ValidateModelName(p.model_name));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.data_source, fields.String("data_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.target, fields.String("target"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.features, fields.OptionalStringList("features"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<std::string> type,
                                 fields.OptionalString("model_type"));
  if (type && *type != "linear" && *type != "ridge") {
    return fields.Invalid("model_type", "must be \"linear\" or \"ridge\"");
  }
  p.ridge = type && *type == "ridge";
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.alpha, fields.Number("alpha", 1.0, 0, 1e12));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(p.test_ratio, fields.Number("test_ratio", 0.2, 0, 0.9));
  if (p.features) {
    for (size_t i = 0; i < p.features->size(); ++i) {
      const std::string& f = (*p.features)[i];
      if (f == p.target) {
        return fields.Invalid("features", "must not contain the target '" + f + "'");
      }
      if (std::find(p.features->begin(), p.features->begin() + static_cast<std::ptrdiff_t>(i), f) !=
          p.features->begin() + static_cast<std::ptrdiff_t>(i)) {
        return fields.Invalid("features", "names '" + f + "' twice");
      }
    }
  }
  return p;
}

Result<json::value> Train(const Workspace& ws, const TrainParams& params, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef input,
                                 ResolveInput(ws, params.data_source, "data_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileFingerprint fingerprint, StatFile(input.path, input.display));
  job.ReportProgress(0, "reading " + input.display);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<TableReader> reader,
                                 TableReader::Open(input.path, input.display, job));
  const std::optional<size_t> target = reader->Find(params.target);
  if (!target) return reader->MissingColumn(params.target);

  // The default features need the column types: infer them from the first rows, kept for the
  // pass below.
  std::vector<Row> head;
  bool ended = false;
  std::vector<std::string> features;
  if (params.features) {
    features = *params.features;
  } else {
    std::vector<TypeInference> inference(reader->columns().size());
    while (head.size() < kInferRows) {
      Row row;
      BMOS_HANDLERS_ASSIGN_OR_RETURN(bool got, reader->Next(&row));
      if (!got) {
        ended = true;
        break;
      }
      for (size_t c = 0; c < row.values.size(); ++c) inference[c].Add(Trim(row.values[c]));
      head.push_back(std::move(row));
    }
    for (size_t c = 0; c < inference.size(); ++c) {
      if (c != *target && IsNumeric(inference[c].type())) features.push_back(reader->columns()[c]);
    }
    if (features.empty()) {
      return Status::InvalidArgument(input.display + ": no numeric column besides the target '" +
                                     params.target + "' to use as a feature; name them in " +
                                     "'features'");
    }
  }
  const size_t p = features.size();
  std::vector<size_t> index;
  for (const std::string& f : features) {
    const std::optional<size_t> c = reader->Find(f);
    if (!c) return reader->MissingColumn(f);
    index.push_back(*c);
  }

  Samples train, validation;
  uint64_t skipped = 0;
  json::array skipped_lines;
  std::vector<double> x(p);
  const auto take = [&](const Row& row) {
    std::optional<Number> y = ParseNumber(Trim(row.values[*target]));
    bool ok = y.has_value();
    for (size_t j = 0; ok && j < p; ++j) {
      std::optional<Number> v = ParseNumber(Trim(row.values[index[j]]));
      ok = v.has_value();
      if (ok) x[j] = v->value;
    }
    if (!ok) {
      if (skipped++ < kLineExamples) skipped_lines.emplace_back(row.line);
      return;
    }
    Samples& s = InValidation(row.values, params.test_ratio) ? validation : train;
    s.x.insert(s.x.end(), x.begin(), x.end());
    s.y.push_back(y->value);
  };
  for (const Row& row : head) take(row);
  head.clear();
  Row row;
  for (uint64_t n = 1; !ended; ++n) {
    BMOS_HANDLERS_ASSIGN_OR_RETURN(bool got, reader->Next(&row));
    if (!got) break;
    take(row);
    if ((n & 1023) == 0) {
      if (job.cancelled()) return CancelledStatus(input.display);
      if ((n & 16383) == 0)
        job.ReportProgress(0.8 * reader->fraction(), "reading " + input.display);
    }
  }
  fingerprint.hash = reader->content_hash();
  if (job.cancelled()) return CancelledStatus(input.display);
  if (train.rows() < p + 1) {
    return Status::InvalidArgument(
        input.display + ": not enough usable rows to fit " + std::to_string(p) +
        " features: " + std::to_string(train.rows()) + " training rows (need at least " +
        std::to_string(p + 1) + "; " + std::to_string(skipped) +
        " rows skipped for a missing or non-numeric target or feature)");
  }

  job.ReportProgress(0.8, "fitting");
  Fit fit = FitLinear(train, features, params.ridge, params.alpha);
  if (job.cancelled()) return CancelledStatus(input.display);
  const Metrics train_metrics = Evaluate(train, p, fit.coefficients, fit.intercept);
  const Metrics validation_metrics = Evaluate(validation, p, fit.coefficients, fit.intercept);
  double selection_rmse = validation_metrics.rmse;
  if (validation.rows() == 0) {
    selection_rmse = train_metrics.rmse;
    fit.warnings.push_back("no validation rows (test_ratio " + FormatDouble(params.test_ratio) +
                           "); promotion compared the training RMSE");
  }
  job.ReportProgress(0.9, "saving the model");

  json::object coefficients;
  for (size_t j = 0; j < p; ++j) coefficients[features[j]] = JsonNumber(fit.coefficients[j]);
  json::object metrics{
      {"train", train_metrics.ToJson()},
      {"validation",
       validation.rows() == 0 ? json::value(nullptr) : json::value(validation_metrics.ToJson())}};
  json::object standardization{{"mean", json::array(fit.mean.begin(), fit.mean.end())},
                               {"std", json::array(fit.scale.begin(), fit.scale.end())}};
  json::array warnings = JsonStrings(fit.warnings);

  std::lock_guard<std::mutex> lock(ModelsMutex());
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path dir,
                                 ws.root.Resolve(ModelDir(params.model_name), "model_name"));
  const std::vector<int64_t> versions = ListVersions(dir);
  const int64_t version = versions.empty() ? 1 : versions.back() + 1;
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<LoadedModel> current,
                                 LoadCurrent(ws, params.model_name));
  bool promoted = true;
  if (current && current->selection_rmse) {
    const double old = *current->selection_rmse;
    promoted = selection_rmse <= old + 1e-12 * std::max(1.0, std::fabs(old));
  }
  const std::string file = ModelDir(params.model_name) + "/v" + std::to_string(version) + ".json";
  const std::string created = NowIso(ws);
  json::object doc{
      {"format", kFormat},
      {"model_name", params.model_name},
      {"version", version},
      {"created_at", created},
      {"model_type", params.ridge ? "ridge" : "linear"},
      {"alpha", params.ridge ? JsonNumber(params.alpha) : json::value(nullptr)},
      {"target", params.target},
      {"features", JsonStrings(features)},
      {"coefficients", coefficients},
      {"intercept", JsonNumber(fit.intercept)},
      {"standardization", standardization},
      {"metrics", metrics},
      {"selection_rmse", JsonNumber(selection_rmse)},
      {"params",
       json::object{{"data_source", input.display},
                    {"target", params.target},
                    {"features", params.features ? json::value(JsonStrings(*params.features))
                                                 : json::value(nullptr)},
                    {"model_type", params.ridge ? "ridge" : "linear"},
                    {"alpha", JsonNumber(params.alpha)},
                    {"test_ratio", JsonNumber(params.test_ratio)}}},
      {"data_source", json::object{{"path", input.display},
                                   {"size", fingerprint.size},
                                   {"mtime_ns", fingerprint.mtime_ns},
                                   {"hash", fingerprint.hash}}},
      {"rows", json::object{{"used", train.rows() + validation.rows()},
                            {"skipped", skipped},
                            {"train", train.rows()},
                            {"validation", validation.rows()}}},
      {"warnings", warnings},
  };
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path model_path, ws.root.Resolve(file, "model_name"));
  BMOS_HANDLERS_RETURN_IF_ERROR(WriteFileAtomically(model_path, JsonFileText(doc), file));
  if (promoted) {
    const std::string pointer = ModelDir(params.model_name) + "/current.json";
    BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path pointer_path, ws.root.Resolve(pointer, "model_name"));
    const json::object p_doc{{"model_name", params.model_name},
                             {"version", version},
                             {"model_file", "v" + std::to_string(version) + ".json"},
                             {"selection_rmse", JsonNumber(selection_rmse)},
                             {"promoted_at", created}};
    BMOS_HANDLERS_RETURN_IF_ERROR(WriteFileAtomically(pointer_path, JsonFileText(p_doc), pointer));
  }
  const json::value previous = current ? json::value(current->version) : json::value(nullptr);
  job.ReportProgress(1, promoted ? "trained and promoted" : "trained (not promoted)");
  return json::value(json::object{
      {"model_name", params.model_name},
      {"version", version},
      {"model_file", file},
      {"promoted", promoted},
      {"previous_version", previous},
      {"current_version", promoted ? json::value(version) : previous},
      {"model_type", params.ridge ? "ridge" : "linear"},
      {"target", params.target},
      {"features", JsonStrings(features)},
      {"coefficients", std::move(coefficients)},
      {"intercept", JsonNumber(fit.intercept)},
      {"metrics", std::move(metrics)},
      {"selection_rmse", JsonNumber(selection_rmse)},
      {"rows_used", train.rows() + validation.rows()},
      {"rows_skipped", skipped},
      {"skipped_lines", std::move(skipped_lines)},
      {"warnings", std::move(warnings)},
  });
}

}  // namespace

Result<json::value> TrainModel(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(TrainParams params, ParseTrainParams(data));
  return Train(ws, params, job);
}

Result<json::value> BatchPredictions(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields, TaskData::Parse("batch_predictions", data,
                                       {"model_name", "version", "data_source", "output"}));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string name, fields.String("model_name"));
  BMOS_HANDLERS_RETURN_IF_ERROR(ValidateModelName(name));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<int64_t> version,
                                 fields.OptionalInteger("version", 1, INT64_MAX));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string source, fields.String("data_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<std::string> output_field,
                                 fields.OptionalString("output"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef input, ResolveInput(ws, source, "data_source"));
  const std::string output_name =
      output_field ? *output_field : Beside(input.display, "_predictions.csv");
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef output, ResolveOutput(ws, output_name, "output"));
  if (output.path == input.path) return fields.Invalid("output", "must differ from data_source");

  BMOS_HANDLERS_ASSIGN_OR_RETURN(LoadedModel model, LoadVersion(ws, name, version));
  job.ReportProgress(0, "reading " + input.display);
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<TableReader> reader,
                                 TableReader::Open(input.path, input.display, job));
  const size_t p = model.features.size();
  std::vector<size_t> index;
  for (const std::string& f : model.features) {
    const std::optional<size_t> c = reader->Find(f);
    if (!c) return reader->MissingColumn(f);
    index.push_back(*c);
  }
  std::string column = "prediction";
  if (reader->Find(column)) column = "prediction_v" + std::to_string(model.version);
  while (reader->Find(column)) column += "_";

  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file,
                                 AtomicFile::Create(output.path, output.display));
  std::string buffer;
  std::vector<std::string> header = reader->columns();
  header.push_back(column);
  AppendCsvRecord(&buffer, std::span<const std::string>(header));
  uint64_t rows = 0, predicted = 0, missing = 0;
  json::array missing_lines;
  std::vector<uint64_t> missing_by_feature(p, 0);
  Row row;
  for (;;) {
    BMOS_HANDLERS_ASSIGN_OR_RETURN(bool got, reader->Next(&row));
    if (!got) break;
    ++rows;
    double y = model.intercept;
    bool ok = true;
    for (size_t j = 0; j < p; ++j) {
      std::optional<Number> v = ParseNumber(Trim(row.values[index[j]]));
      if (!v) {
        ok = false;
        ++missing_by_feature[j];
      } else {
        y += model.coefficients[j] * v->value;
      }
    }
    if (ok && std::isfinite(y)) {
      ++predicted;
      row.values.push_back(FormatDouble(y));
    } else {
      if (missing++ < kLineExamples) missing_lines.emplace_back(row.line);
      row.values.emplace_back();
    }
    AppendCsvRecord(&buffer, std::span<const std::string>(row.values));
    if (buffer.size() >= (1u << 16)) {
      BMOS_HANDLERS_RETURN_IF_ERROR(file->Append(buffer));
      buffer.clear();
      if (job.cancelled()) return CancelledStatus(input.display);
      job.ReportProgress(0.95 * reader->fraction(), "predicting");
    }
  }
  BMOS_HANDLERS_RETURN_IF_ERROR(file->Append(buffer));
  if (job.cancelled()) return CancelledStatus(input.display);
  BMOS_HANDLERS_RETURN_IF_ERROR(file->Commit());
  json::object by_feature;
  for (size_t j = 0; j < p; ++j) {
    if (missing_by_feature[j] > 0) by_feature[model.features[j]] = missing_by_feature[j];
  }
  job.ReportProgress(1, "done");
  return json::value(json::object{
      {"model_name", name},
      {"version", model.version},
      {"model_file", model.file},
      {"data_source", input.display},
      {"output", output.display},
      {"prediction_column", column},
      {"rows", rows},
      {"predicted", predicted},
      {"missing_feature_rows", missing},
      {"missing_feature_lines", std::move(missing_lines)},
      {"missing_by_feature", std::move(by_feature)},
  });
}

Result<json::value> RetrainModels(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(TaskData fields, TaskData::Parse("retrain_models", data, {}));
  (void)fields;
  json::array retrained, unchanged, skipped, failed;
  const fs::path models = ws.root.path() / "models";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(models, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i < names.size(); ++i) {
    if (job.cancelled()) return CancelledStatus("retrain_models");
    const std::string& name = names[i];
    SubJob sub(&job, static_cast<double>(i) / static_cast<double>(names.size()),
               static_cast<double>(i + 1) / static_cast<double>(names.size()));
    const auto skip = [&](std::string reason) {
      skipped.push_back(json::object{{"model_name", name}, {"reason", std::move(reason)}});
    };
    if (!ValidateModelName(name).ok()) {
      skip("not a valid model name");
      continue;
    }
    Result<std::optional<LoadedModel>> current = LoadCurrent(ws, name);
    if (!current.ok()) {
      failed.push_back(json::object{{"model_name", name}, {"error", current.status().ToString()}});
      continue;
    }
    if (!current->has_value()) {
      skip("no current version");
      continue;
    }
    const LoadedModel& model = **current;
    const json::object* params =
        model.doc.if_contains("params") != nullptr ? model.doc.at("params").if_object() : nullptr;
    const json::object* source = model.doc.if_contains("data_source") != nullptr
                                     ? model.doc.at("data_source").if_object()
                                     : nullptr;
    if (params == nullptr || source == nullptr) {
      skip("the current version records no parameters or data source");
      continue;
    }
    const json::value* path = source->if_contains("path");
    if (path == nullptr || !path->is_string()) {
      skip("the current version records no data source path");
      continue;
    }
    Result<FileRef> input = ResolveInput(ws, path->get_string(), "data_source");
    if (!input.ok()) {
      skip("data source unavailable: " + input.status().message());
      continue;
    }
    // Changed when size or time differ and the content does too (a touch alone is no change).
    Result<FileFingerprint> now = StatFile(input->path, input->display);
    if (!now.ok()) {
      failed.push_back(json::object{{"model_name", name}, {"error", now.status().ToString()}});
      continue;
    }
    const std::optional<double> size = AsDouble(source->if_contains("size"));
    const json::value* mtime = source->if_contains("mtime_ns");
    const json::value* hash = source->if_contains("hash");
    const bool same_stat = size && *size == static_cast<double>(now->size) && mtime != nullptr &&
                           mtime->is_int64() && mtime->get_int64() == now->mtime_ns;
    if (same_stat) {
      unchanged.emplace_back(name);
      continue;
    }
    if (hash != nullptr && hash->is_string()) {
      Result<FileFingerprint> full =
          FingerprintFile(input->path, input->display, [&job] { return job.cancelled(); });
      if (!full.ok()) {
        if (full.status().code() == Status::Code::kCancelled) return full.status();
        failed.push_back(json::object{{"model_name", name}, {"error", full.status().ToString()}});
        continue;
      }
      if (full->hash == hash->get_string()) {
        unchanged.emplace_back(name);
        continue;
      }
    }
    // A version newer than the current one trained on this very content was not promoted:
    // training again would only repeat it.
    if (const std::vector<int64_t> versions = ListVersions(ws.root.path() / "models" / name);
        !versions.empty() && versions.back() > model.version) {
      Result<LoadedModel> latest = LoadVersion(ws, name, versions.back());
      Result<FileFingerprint> full =
          FingerprintFile(input->path, input->display, [&job] { return job.cancelled(); });
      if (!full.ok() && full.status().code() == Status::Code::kCancelled) return full.status();
      const json::value* latest_source =
          latest.ok() ? latest->doc.if_contains("data_source") : nullptr;
      const json::value* latest_hash = latest_source != nullptr && latest_source->is_object()
                                           ? latest_source->as_object().if_contains("hash")
                                           : nullptr;
      if (full.ok() && latest_hash != nullptr && latest_hash->is_string() &&
          latest_hash->get_string() == full->hash) {
        skip("already retrained on this data as v" + std::to_string(versions.back()) +
             ", which was not promoted");
        continue;
      }
    }
    // Same parameters; the features as the current version resolved them.
    json::object train_data{{"model_name", name},
                            {"data_source", input->display},
                            {"features", JsonStrings(model.features)}};
    for (const char* key : {"target", "model_type", "alpha", "test_ratio"}) {
      if (const json::value* v = params->if_contains(key); v != nullptr) train_data[key] = *v;
    }
    Result<json::value> result = TrainModel(ws, train_data, sub);
    if (!result.ok()) {
      if (result.status().code() == Status::Code::kCancelled) return result.status();
      failed.push_back(json::object{{"model_name", name}, {"error", result.status().ToString()}});
      continue;
    }
    const json::object& r = result->as_object();
    const json::value* validation = r.at("metrics").as_object().if_contains("validation");
    retrained.push_back(
        json::object{{"model_name", name},
                     {"previous_version", model.version},
                     {"version", r.at("version")},
                     {"promoted", r.at("promoted")},
                     {"validation_rmse", validation != nullptr && validation->is_object()
                                             ? validation->as_object().at("rmse")
                                             : json::value(nullptr)}});
  }
  job.ReportProgress(1, "done");
  return json::value(json::object{{"checked", names.size()},
                                  {"retrained", std::move(retrained)},
                                  {"unchanged", std::move(unchanged)},
                                  {"skipped", std::move(skipped)},
                                  {"failed", std::move(failed)}});
}

}  // namespace bmos::engine::handlers
