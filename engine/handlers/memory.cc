// extract_memory: recurring themes of customer feedback (operations.h has the contract).

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "engine/handlers/internal/common.h"
#include "engine/handlers/internal/io.h"
#include "engine/handlers/internal/memory_themes.h"
#include "engine/handlers/internal/table.h"
#include "engine/handlers/internal/utf8.h"
#include "engine/handlers/internal/values.h"
#include "engine/handlers/operations.h"

namespace bmos::engine::handlers {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace internal;  // NOLINT: the handlers' own helpers

namespace {

constexpr std::string_view kSnapshot = "memory/themes.json";
constexpr std::string_view kPreviousSnapshot = "memory/themes.previous.json";
constexpr uint64_t kRecurring = 2;  // items that must mention a theme for it to recur
constexpr size_t kSnapshotThemes = 2000;
constexpr size_t kListed = 5;  // entries of rising, falling, new, lowest rated

// Serialises extractions: each reads the snapshot the previous one wrote.
std::mutex& SnapshotMutex() {
  static std::mutex mu;
  return mu;
}

struct ThemeStats {
  uint64_t count = 0;
  uint64_t rated = 0;
  double rating_sum = 0;
  bool cjk = false;
  double average() const { return rated == 0 ? NAN : rating_sum / static_cast<double>(rated); }
};

struct Previous {
  std::string generated_at;
  std::unordered_map<std::string, double> share;
};

std::string Percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", ratio * 100);
  return buf;
}

std::string Rating(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", r);
  return buf;
}

double Round(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

}  // namespace

Result<json::value> ExtractMemory(const Workspace& ws, const json::object& data, Job& job) {
  BMOS_HANDLERS_ASSIGN_OR_RETURN(
      TaskData fields, TaskData::Parse("extract_memory", data, {"feedback_source", "top"}));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::string source, fields.String("feedback_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<int64_t> top_field,
                                 fields.OptionalInteger("top", 1, 200));
  const size_t top = static_cast<size_t>(top_field.value_or(20));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(FileRef input, ResolveInput(ws, source, "feedback_source"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path snapshot_path, ws.root.Resolve(kSnapshot, "snapshot"));
  BMOS_HANDLERS_ASSIGN_OR_RETURN(fs::path previous_path,
                                 ws.root.Resolve(kPreviousSnapshot, "snapshot"));

  std::ifstream in(input.path, std::ios::binary);
  if (!in) return Status::IOError(input.display + ": cannot open");
  std::error_code size_ec;
  const uint64_t size = fs::file_size(input.path, size_ec);
  uint64_t consumed = 0;

  std::unordered_map<std::string, ThemeStats> themes;
  struct Category {
    uint64_t items = 0, rated = 0;
    double rating_sum = 0;
  };
  std::map<std::string, Category> categories;
  uint64_t items = 0, rated_items = 0;
  double rating_sum = 0;
  std::string first_time, last_time;
  std::string line;
  for (uint64_t number = 1; std::getline(in, line); ++number) {
    consumed += line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if ((number & 1023) == 0) {
      if (job.cancelled()) return CancelledStatus(input.display);
      job.ReportProgress(
          size == 0 ? 0 : 0.8 * static_cast<double>(consumed) / static_cast<double>(size),
          "reading " + input.display);
    }
    BMOS_HANDLERS_ASSIGN_OR_RETURN(std::optional<json::object> object,
                                   ParseJsonObjectLine(line, number, input.display));
    if (!object) continue;
    const std::string where = input.display + ": line " + std::to_string(number);
    const json::value* text = object->if_contains("text");
    if (text == nullptr || !text->is_string()) {
      return Status::InvalidArgument(where + ": field 'text' must be a string");
    }
    std::optional<double> rating;
    if (const json::value* r = object->if_contains("rating"); r != nullptr && !r->is_null()) {
      if (r->is_int64()) {
        rating = static_cast<double>(r->get_int64());
      } else if (r->is_uint64()) {
        rating = static_cast<double>(r->get_uint64());
      } else if (r->is_double()) {
        rating = r->get_double();
      } else {
        return Status::InvalidArgument(where + ": field 'rating' must be a number or null");
      }
    }
    std::string category;
    if (const json::value* c = object->if_contains("category"); c != nullptr && !c->is_null()) {
      if (!c->is_string()) {
        return Status::InvalidArgument(where + ": field 'category' must be a string");
      }
      category = std::string(Trim(c->get_string()));
    }
    if (const json::value* t = object->if_contains("time"); t != nullptr && !t->is_null()) {
      if (!t->is_string())
        return Status::InvalidArgument(where + ": field 'time' must be a string");
      const std::string time(Trim(t->get_string()));
      if (!time.empty()) {
        if (first_time.empty() || time < first_time) first_time = time;
        if (last_time.empty() || time > last_time) last_time = time;
      }
    }
    ++items;
    if (rating) {
      ++rated_items;
      rating_sum += *rating;
    }
    if (!category.empty()) {
      Category& cat = categories[category];
      ++cat.items;
      if (rating) {
        ++cat.rated;
        cat.rating_sum += *rating;
      }
    }
    for (Theme& theme : ExtractThemes(text->get_string())) {
      ThemeStats& stats = themes[theme.text];
      stats.cjk = theme.cjk;
      ++stats.count;
      if (rating) {
        ++stats.rated;
        stats.rating_sum += *rating;
      }
    }
  }
  if (in.bad()) return Status::IOError(input.display + ": read failed");
  if (items == 0) {
    return Status::InvalidArgument(input.display + " is empty (no feedback lines)");
  }
  if (job.cancelled()) return CancelledStatus(input.display);
  job.ReportProgress(0.8, "ranking themes");

  // Recurring themes, most mentioned first.
  std::vector<std::pair<std::string, ThemeStats>> recurring;
  for (auto& [text, stats] : themes) {
    if (stats.count >= kRecurring) recurring.emplace_back(text, stats);
  }
  std::sort(recurring.begin(), recurring.end(), [](const auto& a, const auto& b) {
    return a.second.count != b.second.count ? a.second.count > b.second.count : a.first < b.first;
  });
  const auto share_of = [&](uint64_t count) {
    return static_cast<double>(count) / static_cast<double>(items);
  };

  std::lock_guard<std::mutex> lock(SnapshotMutex());
  std::optional<Previous> previous;
  std::string previous_text;
  json::array warnings;
  {
    Result<std::string> text = ReadSmallFile(snapshot_path, kSnapshot);
    if (text.ok()) {
      boost::system::error_code ec;
      json::value v = json::parse(*text, ec);
      const json::object* o = ec ? nullptr : v.if_object();
      const json::value* t = o == nullptr ? nullptr : o->if_contains("themes");
      if (t != nullptr && t->is_object()) {
        Previous p;
        if (const json::value* g = o->if_contains("generated_at"); g != nullptr && g->is_string()) {
          p.generated_at = std::string(g->get_string());
        }
        for (const auto& kv : t->get_object()) {
          const json::object* entry = kv.value().if_object();
          const json::value* s = entry == nullptr ? nullptr : entry->if_contains("share");
          if (s != nullptr && s->is_number())
            p.share[std::string(kv.key())] = s->to_number<double>();
        }
        previous = std::move(p);
        previous_text = std::move(*text);
      } else {
        warnings.emplace_back(std::string(kSnapshot) +
                              " is not a themes snapshot; trends start over");
      }
    } else if (text.status().code() != Status::Code::kNotFound) {
      return text.status();
    }
  }

  const auto theme_json = [&](const std::string& text, const ThemeStats& stats) {
    const double share = share_of(stats.count);
    json::object o{{"theme", text},
                   {"script", stats.cjk ? "cjk" : "latin"},
                   {"count", stats.count},
                   {"share", Round(share, 4)},
                   {"average_rating", JsonNumber(Round(stats.average(), 2))}};
    if (previous) {
      auto it = previous->share.find(text);
      const double before = it == previous->share.end() ? 0 : it->second;
      o["previous_share"] = Round(before, 4);
      o["trend"] = Round(share - before, 4);
    } else {
      o["previous_share"] = nullptr;
      o["trend"] = nullptr;
    }
    return o;
  };

  json::array top_themes;
  for (size_t i = 0; i < recurring.size() && i < top; ++i) {
    top_themes.push_back(theme_json(recurring[i].first, recurring[i].second));
  }
  json::array rising, falling, new_themes, lowest;
  json::array insights;
  for (size_t i = 0; i < recurring.size() && i < 3; ++i) {
    const auto& [text, stats] = recurring[i];
    insights.emplace_back("Most mentioned: '" + text + "' (" + std::to_string(stats.count) +
                          " of " + std::to_string(items) + " items" +
                          (stats.rated > 0 ? ", average rating " + Rating(stats.average()) : "") +
                          ")");
  }
  {
    std::vector<const std::pair<std::string, ThemeStats>*> rated;
    for (const auto& entry : recurring) {
      if (entry.second.rated >= kRecurring) rated.push_back(&entry);
    }
    std::stable_sort(rated.begin(), rated.end(), [](const auto* a, const auto* b) {
      return a->second.average() < b->second.average();
    });
    for (size_t i = 0; i < rated.size() && i < kListed; ++i) {
      lowest.push_back(theme_json(rated[i]->first, rated[i]->second));
      if (i < 3) {
        insights.emplace_back("Lowest rated: '" + rated[i]->first + "' (average " +
                              Rating(rated[i]->second.average()) + " over " +
                              std::to_string(rated[i]->second.rated) + " rated items)");
      }
    }
  }
  if (previous) {
    struct Move {
      std::string theme;
      double before, now, delta;
      const ThemeStats* stats;
    };
    std::vector<Move> ups, news, downs;
    std::unordered_set<std::string_view> current;
    for (const auto& [text, stats] : recurring) {
      current.insert(text);
      auto it = previous->share.find(text);
      const double before = it == previous->share.end() ? 0 : it->second;
      const double now = share_of(stats.count);
      if (it == previous->share.end()) news.push_back({text, before, now, now, &stats});
      if (now > before) ups.push_back({text, before, now, now - before, &stats});
    }
    for (const auto& [text, before] : previous->share) {
      auto it = themes.find(text);
      const double now = it == themes.end() ? 0 : share_of(it->second.count);
      if (now < before) downs.push_back({text, before, now, now - before, nullptr});
    }
    const auto by_delta = [](const Move& a, const Move& b) {
      return std::fabs(a.delta) != std::fabs(b.delta) ? std::fabs(a.delta) > std::fabs(b.delta)
                                                      : a.theme < b.theme;
    };
    std::sort(ups.begin(), ups.end(), by_delta);
    std::sort(news.begin(), news.end(), by_delta);
    std::sort(downs.begin(), downs.end(), by_delta);
    for (size_t i = 0; i < ups.size() && i < kListed; ++i) {
      rising.push_back(theme_json(ups[i].theme, *ups[i].stats));
      if (i < 3) {
        insights.emplace_back("Rising: '" + ups[i].theme + "' from " + Percent(ups[i].before) +
                              " to " + Percent(ups[i].now) + " of items");
      }
    }
    for (size_t i = 0; i < news.size() && i < kListed; ++i) {
      new_themes.push_back(theme_json(news[i].theme, *news[i].stats));
    }
    for (size_t i = 0; i < downs.size() && i < kListed; ++i) {
      falling.push_back(json::object{{"theme", downs[i].theme},
                                     {"previous_share", Round(downs[i].before, 4)},
                                     {"share", Round(downs[i].now, 4)},
                                     {"trend", Round(downs[i].delta, 4)}});
      if (i < 2) {
        insights.emplace_back("Falling: '" + downs[i].theme + "' from " + Percent(downs[i].before) +
                              " to " + Percent(downs[i].now) + " of items");
      }
    }
  }
  if (recurring.empty()) insights.emplace_back("No theme is mentioned by more than one item yet");

  json::object category_json;
  for (const auto& [name, cat] : categories) {
    category_json[name] = json::object{
        {"items", cat.items},
        {"average_rating",
         cat.rated == 0 ? json::value(nullptr)
                        : JsonNumber(Round(cat.rating_sum / static_cast<double>(cat.rated), 2))}};
  }

  // The new snapshot; the one it replaces is kept as the previous snapshot.
  const std::string generated_at = NowIso(ws);
  json::object snapshot_themes;
  for (size_t i = 0; i < recurring.size() && i < kSnapshotThemes; ++i) {
    const auto& [text, stats] = recurring[i];
    snapshot_themes[text] = json::object{{"count", stats.count},
                                         {"share", Round(share_of(stats.count), 6)},
                                         {"average_rating", JsonNumber(Round(stats.average(), 4))}};
  }
  const json::object snapshot{{"generated_at", generated_at},
                              {"feedback_source", input.display},
                              {"items", items},
                              {"themes", std::move(snapshot_themes)}};
  if (job.cancelled()) return CancelledStatus(input.display);
  job.ReportProgress(0.9, "saving the snapshot");
  if (!previous_text.empty()) {
    BMOS_HANDLERS_RETURN_IF_ERROR(
        WriteFileAtomically(previous_path, previous_text, std::string(kPreviousSnapshot)));
  }
  BMOS_HANDLERS_RETURN_IF_ERROR(
      WriteFileAtomically(snapshot_path, JsonFileText(snapshot), std::string(kSnapshot)));

  job.ReportProgress(1, "done");
  return json::value(json::object{
      {"feedback_source", input.display},
      {"items", items},
      {"rated_items", rated_items},
      {"average_rating", rated_items == 0
                             ? json::value(nullptr)
                             : JsonNumber(Round(rating_sum / static_cast<double>(rated_items), 2))},
      {"period",
       json::object{{"from", first_time.empty() ? json::value(nullptr) : json::value(first_time)},
                    {"to", last_time.empty() ? json::value(nullptr) : json::value(last_time)}}},
      {"categories", std::move(category_json)},
      {"distinct_themes", themes.size()},
      {"recurring_themes", recurring.size()},
      {"themes", std::move(top_themes)},
      {"rising", std::move(rising)},
      {"falling", std::move(falling)},
      {"new_themes", std::move(new_themes)},
      {"lowest_rated", std::move(lowest)},
      {"insights", std::move(insights)},
      {"snapshot", std::string(kSnapshot)},
      {"previous_snapshot", previous ? json::value(previous->generated_at) : json::value(nullptr)},
      {"warnings", std::move(warnings)},
  });
}

}  // namespace bmos::engine::handlers
