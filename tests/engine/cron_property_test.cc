// Property test: cron triggers against a brute-force reference.
//
// Random APScheduler field sets and crontab lines are generated together with a naive model of
// what they mean (a table of allowed values per field, the day rules written out plainly). The
// reference then steps through candidate instants one by one (every second, or every minute at
// the one allowed second), converts each to wall-clock time in the zone, and applies the DST
// policy of engine/trigger.h literally: an instant fires if its wall time matches and was not
// already shown by the clock earlier (fall back), or if the clock just jumped over a matching
// wall time (spring forward). Trigger::NextFireTime must produce exactly the same instants.
// Fixed seeds; a few seconds even under ASan.
#include <date/date.h>
#include <date/iso_week.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/trigger.h"

namespace bmos::engine {
namespace {

constexpr int64_t kUs = 1'000'000;
constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::array<std::string_view, 7> kCronDays = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat"};
constexpr std::array<std::string_view, 6> kPositions = {"1st", "2nd", "3rd", "4th", "5th", "last"};

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The naive meaning of a cron expression.
struct Model {
  std::vector<bool> years = std::vector<bool>(10000, true);
  std::vector<bool> months = std::vector<bool>(13, true);
  std::vector<bool> days = std::vector<bool>(32, true);
  std::vector<std::pair<int, int>> specials;  // (position 0-4 / 5 = last / -1 = last day, weekday)
  std::vector<bool> weeks = std::vector<bool>(54, true);
  std::vector<bool> weekdays = std::vector<bool>(7, true);  // 0 = Monday
  std::vector<bool> hours = std::vector<bool>(24, true);
  std::vector<bool> minutes = std::vector<bool>(60, true);
  std::vector<bool> seconds = std::vector<bool>(60, true);
  bool crontab = false;
  bool day_or_weekday = false;  // crontab with both day fields restricted

  bool DateMatches(int y, int m, int d) const {
    if (y < 1970 || y > 9999 || !years[y] || !months[m]) return false;
    const date::year_month_day ymd{date::year{y}, date::month(m), date::day(d)};
    const date::sys_days sd{ymd};
    const int wd = (date::weekday{sd}.c_encoding() + 6) % 7;
    const int dim = static_cast<int>(unsigned((date::year{y} / m / date::last).day()));
    bool dom = days[d];
    for (auto [pos, w] : specials) {
      if (pos == -1) dom = dom || d == dim;
      if (pos >= 0 && pos < 5) dom = dom || (wd == w && (d - 1) / 7 == pos);
      if (pos == 5) dom = dom || (wd == w && d + 7 > dim);
    }
    const bool dow = weekdays[wd];
    if (crontab) return day_or_weekday ? (dom || dow) : (dom && dow);
    if (!dom || !dow) return false;
    const int week = static_cast<int>(unsigned(iso_week::year_weeknum_weekday{sd}.weeknum()));
    return weeks[week];
  }
  bool WallMatches(int64_t local) const {
    const int64_t day = FloorDiv(local, 86400);
    const int64_t sod = local - day * 86400;
    if (!hours[sod / 3600] || !minutes[sod / 60 % 60] || !seconds[sod % 60]) return false;
    const date::year_month_day ymd{date::sys_days{date::days{day}}};
    return DateMatches(int(ymd.year()), int(unsigned(ymd.month())), int(unsigned(ymd.day())));
  }
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::mt19937_64& rng() { return rng_; }

  // One comma list for a field with values min..max. `names`: names[i] = names_base + i.
  // APScheduler rules unless `cron` (then steps may exceed ranges). Fills `values`.
  std::string Field(int min, int max, std::vector<bool>* values,
                    std::span<const std::string_view> names = {}, int names_base = 0,
                    bool cron = false, int broad = 0) {
    std::fill(values->begin(), values->end(), false);
    std::string text;
    const int items = Chance(0.7) ? 1 : Uniform(2, 3);
    for (int i = 0; i < items; ++i) {
      if (i) text += cron || Chance(0.5) ? "," : ", ";
      text += Item(min, max, values, names, names_base, cron, broad);
    }
    return text;
  }

  // A crontab day-of-week item set (0-7, names sun-sat).
  std::string CronWeekday(std::vector<bool>* weekdays) {
    std::vector<bool> cron(8, false);
    std::string text;
    const int items = Chance(0.7) ? 1 : 2;
    for (int i = 0; i < items; ++i) {
      if (i) text += ",";
      const int form = Uniform(0, 3);
      if (form == 0) {
        const int v = Uniform(0, 7);
        cron[v] = true;
        text += v < 7 && Chance(0.4) ? std::string(kCronDays[v]) : std::to_string(v);
      } else if (form == 1) {
        const int a = Uniform(0, 6), b = Uniform(a, 7);
        for (int v = a; v <= b; ++v) cron[v] = true;
        if (Chance(0.4)) {
          text += std::string(kCronDays[a]) + "-" + std::string(kCronDays[b % 7]);
        } else {
          text += std::to_string(a) + "-" + std::to_string(b);
        }
      } else if (form == 2) {
        const int n = Uniform(1, 8);
        for (int v = 0; v <= 7; v += n) cron[v] = true;
        text += "*/" + std::to_string(n);
      } else {
        const int a = Uniform(0, 6), b = Uniform(a, 7), n = Uniform(1, 4);
        for (int v = a; v <= b; v += n) cron[v] = true;
        text += std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(n);
      }
    }
    std::fill(weekdays->begin(), weekdays->end(), false);
    for (int v = 0; v <= 7; ++v) {
      if (cron[v]) (*weekdays)[(v + 6) % 7] = true;
    }
    return text;
  }

 private:
  std::string Value(int v, std::span<const std::string_view> names, int base) {
    if (!names.empty() && Chance(0.4)) return std::string(names[v - base]);
    return std::to_string(v);
  }

  std::string Item(int min, int max, std::vector<bool>* values,
                   std::span<const std::string_view> names, int base, bool cron, int broad) {
    auto set = [&](int a, int b, int step) {
      for (int v = a; v <= b; v += step) (*values)[v] = true;
    };
    // `broad` biases toward wide sets (so that a short window sees fires).
    const int form = broad > 0 && Chance(0.5) ? Uniform(0, 1) : Uniform(0, 5);
    const int range = max - min;
    switch (form) {
      case 0:
        set(min, max, 1);
        return "*";
      case 1: {
        const int n = cron ? Uniform(1, range + 3)
                           : Uniform(1, std::max(1, std::min(range, broad > 0 ? 6 : range)));
        set(min, max, n);
        return "*/" + std::to_string(n);
      }
      case 2: {
        const int a = Uniform(min, max);
        set(a, a, 1);
        return Value(a, names, base);
      }
      case 3: {
        const int a = Uniform(min, max), b = Uniform(a, max);
        set(a, b, 1);
        return Value(a, names, base) + "-" + Value(b, names, base);
      }
      case 4: {
        const int a = Uniform(min, max - 1), b = Uniform(a + 1, max);
        const int n = cron ? Uniform(1, b - a + 2) : Uniform(1, b - a);
        set(a, b, n);
        return std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(n);
      }
      default: {
        const int a = Uniform(min, max - 1);
        const int n = cron ? Uniform(1, max - a + 2) : Uniform(1, max - a);
        set(a, max, n);
        return std::to_string(a) + "/" + std::to_string(n);
      }
    }
  }

  std::mt19937_64 rng_;
};

struct Case {
  boost::json::object config;
  Model model;
};

// APScheduler fields. `dense`: a config that fires often (for short brute-force windows), with
// exactly one allowed second.
Case RandomFields(Generator& g, bool dense) {
  Case c;
  Model& m = c.model;
  std::array<bool, 8> given{};
  if (dense) {
    given[5] = g.Chance(0.6);
    given[6] = g.Chance(0.8) || !given[5];
    given[7] = g.Chance(0.3);
    given[1] = g.Chance(0.1);
    given[2] = g.Chance(0.15);
    given[4] = g.Chance(0.15);
  } else {
    const double p[8] = {0.1, 0.35, 0.45, 0.15, 0.35, 0.5, 0.5, 0.4};
    for (int i = 0; i < 8; ++i) given[i] = g.Chance(p[i]);
  }
  int finest = -1;
  for (int i = 0; i < 8; ++i) {
    if (given[i]) finest = i;
  }
  // APScheduler defaulting, spelled out: finer than the finest given field -> minimum, except
  // week and day_of_week -> '*'; coarser -> '*'.
  // No field at all: every field is '*'.
  auto default_min = [&](int i) { return finest >= 0 && i > finest && i != 3 && i != 4; };
  std::vector<bool>* tables[8] = {&m.years,    &m.months, &m.days,    &m.weeks,
                                  &m.weekdays, &m.hours,  &m.minutes, &m.seconds};
  const int mins[8] = {1970, 1, 1, 1, 0, 0, 0, 0};
  const int maxs[8] = {9999, 12, 31, 53, 6, 23, 59, 59};
  const char* names[8] = {"year",        "month", "day",    "week",
                          "day_of_week", "hour",  "minute", "second"};
  for (int i = 0; i < 8; ++i) {
    std::vector<bool>& t = *tables[i];
    if (!given[i]) {
      std::fill(t.begin(), t.end(), !default_min(i));
      if (default_min(i)) t[mins[i]] = true;
      if (i == 0) std::fill(t.begin(), t.begin() + 1970, false);
      continue;
    }
    std::string text;
    if (i == 0) {
      // Years near now, so that sparse schedules still fire inside the reference's window.
      std::fill(t.begin(), t.end(), false);
      const int a = g.Uniform(2020, 2040), b = g.Uniform(a, 2060);
      const int n = g.Uniform(1, std::max(1, b - a));
      for (int y = a; y <= b; y += n) t[y] = true;
      text = a == b ? std::to_string(a)
                    : std::to_string(a) + "-" + std::to_string(b) +
                          (n > 1 ? "/" + std::to_string(n) : "");
    } else if (i == 7 && dense) {
      const int s = g.Uniform(0, 59);
      std::fill(t.begin(), t.end(), false);
      t[s] = true;
      text = std::to_string(s);
    } else if (i == 2 && g.Chance(0.3)) {
      std::fill(t.begin(), t.end(), false);
      const int n = g.Uniform(1, 2);
      for (int k = 0; k < n; ++k) {
        if (k) text += ",";
        if (g.Chance(0.25)) {
          m.specials.push_back({-1, 0});
          text += "last";
        } else {
          const int pos = g.Uniform(0, 5), wd = g.Uniform(0, 6);
          m.specials.push_back({pos, wd});
          text += std::string(kPositions[pos]) + " " + std::string(kDays[wd]);
        }
      }
      if (g.Chance(0.3)) text += "," + g.Field(1, 31, &t);  // mixed with plain days
    } else if (i == 1) {
      text = g.Field(1, 12, &t, kMonths, 1, false, dense ? 1 : 0);
    } else if (i == 4) {
      text = g.Field(0, 6, &t, kDays, 0, false, dense ? 1 : 0);
    } else {
      text = g.Field(mins[i], maxs[i], &t, {}, 0, false, dense && i <= 2 ? 1 : 0);
    }
    if (g.Chance(0.2) && text.find_first_not_of("0123456789") == std::string::npos) {
      c.config[names[i]] = std::stoi(text);  // JSON integer
    } else {
      c.config[names[i]] = text;
    }
  }
  return c;
}

Case RandomCrontab(Generator& g, bool dense) {
  Case c;
  Model& m = c.model;
  m.crontab = true;
  std::fill(m.seconds.begin(), m.seconds.end(), false);
  m.seconds[0] = true;
  const std::string minute = g.Field(0, 59, &m.minutes, {}, 0, true);
  const std::string hour = g.Field(0, 23, &m.hours, {}, 0, true);
  std::string dom = "*", month = "*", dow = "*";
  if (g.Chance(dense ? 0.3 : 0.6)) dom = g.Field(1, 31, &m.days, {}, 0, true, dense ? 1 : 0);
  if (g.Chance(dense ? 0.1 : 0.4))
    month = g.Field(1, 12, &m.months, kMonths, 1, true, dense ? 1 : 0);
  if (g.Chance(dense ? 0.3 : 0.6)) dow = g.CronWeekday(&m.weekdays);
  m.day_or_weekday = dom.front() != '*' && dow.front() != '*';
  c.config["crontab"] = minute + " " + hour + " " + dom + " " + month + " " + dow;
  return c;
}

// ---- The reference ----

class Reference {
 public:
  Reference(const Model& model, const date::time_zone* zone) : m_(model), zone_(zone) {}

  int64_t Local(int64_t t) const {
    return t + zone_->get_info(date::sys_seconds{std::chrono::seconds{t}}).offset.count();
  }

  // Does instant t (seconds) fire? `step`/`phase`: the wall-clock seconds worth checking
  // inside a gap (those with second % step == phase when step is 60).
  bool Fires(int64_t t, int step, int phase) const {
    const int64_t local = Local(t);
    if (m_.WallMatches(local)) {
      bool seen = false;  // the clock showed this wall time before (fall back)
      for (int64_t dt : {900, 1800, 2700, 3600, 5400, 7200}) seen = seen || Local(t - dt) == local;
      if (!seen) return true;
    }
    const int64_t before = Local(t - 1);
    if (local - before > 1) {  // the clock jumped over (before, local): spring forward
      for (int64_t w = before + 1; w < local; ++w) {
        if (step == 60 && ((w % 60) + 60) % 60 != phase) continue;
        if (m_.WallMatches(w)) return true;
      }
    }
    return false;
  }

  // All fire instants in [from, to] (seconds), visiting every `step`-th second at `phase` and
  // every offset change.
  std::vector<int64_t> FiresIn(int64_t from, int64_t to, int step, int phase) const {
    std::vector<int64_t> candidates;
    int64_t t = from + ((phase - from) % step + step) % step;
    for (; t <= to; t += step) candidates.push_back(t);
    // Offset changes, found from the database by bisection between samples an hour apart.
    for (int64_t a = from - 1; a < to; a += 3600) {
      const int64_t b = std::min(a + 3600, to);
      if (Local(a) - a == Local(b) - b) continue;
      int64_t lo = a, hi = b;  // offset(lo) != offset(hi)
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (Local(mid) - mid == Local(lo) - lo ? lo : hi) = mid;
      }
      if (hi >= from) candidates.push_back(hi);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<int64_t> out;
    for (int64_t c : candidates) {
      if (Fires(c, step, phase)) out.push_back(c);
    }
    return out;
  }

 private:
  const Model& m_;
  const date::time_zone* zone_;
};

std::vector<int64_t> TriggerFiresIn(const Trigger& t, int64_t from_s, int64_t to_s) {
  std::vector<int64_t> out;
  std::optional<int64_t> next = t.NextFireTime(from_s * kUs);
  while (next && *next <= to_s * kUs) {
    EXPECT_EQ(*next % kUs, 0);
    out.push_back(*next / kUs);
    if (out.size() > 200'000) break;
    next = t.NextFireTime(*next + 1);
  }
  return out;
}

std::string Show(const std::vector<int64_t>& v, const std::string& zone) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 12; ++i) s += *FormatIsoWithOffset(v[i] * kUs, zone) + " ";
  if (v.size() > 12) s += "... (" + std::to_string(v.size()) + ")";
  return s;
}

// A random instant: near one of the zone's offset changes half of the time.
int64_t RandomStart(Generator& g, const date::time_zone* zone) {
  const int64_t base = 1'704'067'200 + int64_t(g.Uniform(0, 8 * 365)) * 86400 +  // 2024-2031
                       g.Uniform(0, 86399);
  if (!g.Chance(0.5)) return base;
  const date::sys_info si = zone->get_info(date::sys_seconds{std::chrono::seconds{base}});
  const int64_t change = si.end.time_since_epoch().count();
  if (change > 4'000'000'000) return base;  // no DST in this zone
  // Often within two hours of the change, so that `from` falls inside gaps and repeats.
  return g.Chance(0.5) ? change - g.Uniform(0, 2 * 86400) : change + g.Uniform(-7200, 7200);
}

const std::vector<std::string>& Zones() {
  static const std::vector<std::string> zones = {"UTC",
                                                 "Europe/Berlin",
                                                 "America/New_York",
                                                 "Australia/Lord_Howe",
                                                 "America/St_Johns",
                                                 "Pacific/Chatham",
                                                 "Asia/Kathmandu"};
  return zones;
}

void CheckWindow(Generator& g, const Case& c, const std::string& zone_name, int64_t from,
                 int64_t window, int step, int phase, int* compared) {
  boost::json::object config = c.config;
  config["timezone"] = zone_name;
  auto trigger = Trigger::Parse(TriggerType::kCron, config);
  ASSERT_TRUE(trigger.ok()) << boost::json::serialize(config) << ": "
                            << trigger.status().ToString();
  const date::time_zone* zone = date::locate_zone(zone_name);
  Reference ref(c.model, zone);
  const std::vector<int64_t> expected = ref.FiresIn(from, from + window, step, phase);
  const std::vector<int64_t> actual = TriggerFiresIn(**trigger, from, from + window);
  *compared += static_cast<int>(expected.size());
  ASSERT_EQ(actual, expected) << boost::json::serialize(config) << " from "
                              << *FormatIsoWithOffset(from * kUs, zone_name)
                              << "\n  expected: " << Show(expected, zone_name)
                              << "\n  actual:   " << Show(actual, zone_name);
  (void)g;
}

// Minute-granularity schedules (one allowed second), every zone, two-day windows stepped per
// minute, half of them around offset changes.
TEST(CronProperty, DenseSchedulesMatchBruteForceInTimeZones) {
  Generator g(20260329);
  int compared = 0;
  for (int i = 0; i < 600; ++i) {
    const Case c = g.Chance(0.25) ? RandomCrontab(g, true) : RandomFields(g, true);
    const std::string& zone = Zones()[g.Uniform(0, Zones().size() - 1)];
    const int phase = static_cast<int>(
        std::find(c.model.seconds.begin(), c.model.seconds.end(), true) - c.model.seconds.begin());
    const int64_t from = RandomStart(g, date::locate_zone(zone));
    CheckWindow(g, c, zone, from, 2 * 86400, 60, phase, &compared);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(compared, 50'000);  // the windows really contain fires
}

// Any schedule (second-level fields too) over three hours around offset changes, every second.
TEST(CronProperty, SecondLevelSchedulesMatchBruteForceAroundDstChanges) {
  Generator g(1017);
  int compared = 0;
  for (int i = 0; i < 150; ++i) {
    Case c = g.Chance(0.2) ? RandomCrontab(g, true) : RandomFields(g, true);
    if (!c.model.crontab && g.Chance(0.7)) {
      // Replace the single second with a random second expression.
      const std::string text = g.Field(0, 59, &c.model.seconds);
      c.config["second"] = text;
      // A given second field is the finest: the fields between the finest given one and
      // second are now '*' instead of their minimum (APScheduler's rule).
      if (!c.config.contains("minute"))
        std::fill(c.model.minutes.begin(), c.model.minutes.end(), true);
      if (!c.config.contains("minute") && !c.config.contains("hour")) {
        std::fill(c.model.hours.begin(), c.model.hours.end(), true);
      }
    }
    const std::string& zone = Zones()[g.Uniform(1, Zones().size() - 2)];  // zones with DST
    const date::time_zone* z = date::locate_zone(zone);
    const int64_t base = 1'704'067'200 + int64_t(g.Uniform(0, 8 * 365)) * 86400;
    const int64_t change =
        z->get_info(date::sys_seconds{std::chrono::seconds{base}}).end.time_since_epoch().count();
    const int64_t from = change - g.Uniform(0, 7200);
    CheckWindow(g, c, zone, from, 3 * 3600, 1, 0, &compared);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(compared, 5'000);
}

// Sparse schedules (any field, specials, weeks, years) in UTC: the reference walks day by day
// over up to eight years and then through the matching day's seconds.
TEST(CronProperty, SparseSchedulesMatchDayByDayReference) {
  Generator g(4242);
  int found = 0;
  for (int i = 0; i < 1500; ++i) {
    const Case c = g.Chance(0.25) ? RandomCrontab(g, false) : RandomFields(g, false);
    auto trigger = Trigger::Parse(TriggerType::kCron, c.config);
    ASSERT_TRUE(trigger.ok()) << boost::json::serialize(c.config) << ": "
                              << trigger.status().ToString();
    int64_t from_us = (1'577'836'800 + int64_t(g.Uniform(0, 20 * 365)) * 86400 +  // 2020-2039
                       g.Uniform(0, 86399)) *
                          kUs +
                      (g.Chance(0.3) ? g.Uniform(1, 999'999) : 0);
    for (int step = 0; step < 4; ++step) {
      const int64_t from = (from_us + kUs - 1) / kUs;  // fires are whole seconds
      const int64_t day0 = FloorDiv(from, 86400);
      constexpr int kDaysWindow = 8 * 366;
      std::optional<int64_t> expected;
      for (int64_t day = day0; day < day0 + kDaysWindow && !expected; ++day) {
        const date::year_month_day ymd{date::sys_days{date::days{day}}};
        if (!c.model.DateMatches(int(ymd.year()), int(unsigned(ymd.month())),
                                 int(unsigned(ymd.day())))) {
          continue;
        }
        for (int h = 0; h < 24 && !expected; ++h) {
          if (!c.model.hours[h]) continue;
          for (int mi = 0; mi < 60 && !expected; ++mi) {
            if (!c.model.minutes[mi]) continue;
            for (int s = 0; s < 60; ++s) {
              const int64_t t = day * 86400 + h * 3600 + mi * 60 + s;
              if (c.model.seconds[s] && t >= from) {
                expected = t;
                break;
              }
            }
          }
        }
      }
      const std::optional<int64_t> actual = (*trigger)->NextFireTime(from_us);
      if (expected) {
        ++found;
        ASSERT_EQ(actual, *expected * kUs)
            << boost::json::serialize(c.config) << " from " << *FormatIsoWithOffset(from_us, "UTC")
            << " expected " << *FormatIsoWithOffset(*expected * kUs, "UTC") << " got "
            << (actual ? *FormatIsoWithOffset(*actual, "UTC") : "never");
        from_us = *actual + 1;
      } else {
        // Nothing within the window: never, or later than the window.
        if (actual) {
          ASSERT_GE(*actual, (day0 + kDaysWindow) * 86400 * kUs)
              << boost::json::serialize(c.config) << " got "
              << *FormatIsoWithOffset(*actual, "UTC");
        }
        break;
      }
    }
  }
  EXPECT_GT(found, 2000);
}

}  // namespace
}  // namespace bmos::engine
