#include "api/router.h"

namespace bmos::api {
namespace {

// The path's segments without empty ones: "/api/v1/tasks/" -> {"api", "v1", "tasks"}.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t start = i;
    while (i < path.size() && path[i] != '/') ++i;
    if (i > start) out.push_back(path.substr(start, i - start));
  }
  return out;
}

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void RouteTable::Add(Verb verb, std::string_view pattern, int id,
                     std::optional<Permission> permission) {
  Route r;
  r.id = id;
  r.verb = verb;
  r.pattern = std::string(pattern);
  r.name = std::string(boost::beast::http::to_string(verb)) + " " + r.pattern;
  r.permission = permission;
  routes_.push_back(std::move(r));
  Compiled c;
  for (std::string_view s : Segments(pattern)) c.segments.emplace_back(s);
  compiled_.push_back(std::move(c));
}

RouteMatch RouteTable::Match(Verb verb, std::string_view path) const {
  RouteMatch out;
  // Doubled slashes and dot segments are not normalised: such paths match nothing (404).
  if (path.empty() || path.front() != '/' || path.find("//") != std::string_view::npos) {
    return out;
  }
  const std::vector<std::string_view> segments = Segments(path);
  // The resource is the most literal pattern the path matches (fewest parameters, then the
  // first added): its route with this verb is found; without one, its other verbs are allowed.
  int resource = -1;
  int fewest = 0;
  for (size_t r = 0; r < routes_.size(); ++r) {
    const std::vector<std::string>& pattern = compiled_[r].segments;
    if (pattern.size() != segments.size()) continue;
    int params = 0;
    bool ok = true;
    for (size_t i = 0; i < pattern.size() && ok; ++i) {
      if (IsParam(pattern[i])) {
        ++params;
      } else {
        ok = pattern[i] == segments[i];
      }
    }
    if (ok && (resource < 0 || params < fewest)) {
      resource = static_cast<int>(r);
      fewest = params;
    }
  }
  if (resource < 0) return out;
  const std::vector<std::string>& pattern = compiled_[resource].segments;
  for (size_t r = 0; r < routes_.size(); ++r) {
    if (compiled_[r].segments != pattern) continue;
    if (routes_[r].verb == verb) {
      out.kind = RouteMatch::Kind::kFound;
      out.route = &routes_[r];
      out.allow.clear();
      for (size_t i = 0; i < pattern.size(); ++i) {
        if (IsParam(pattern[i])) out.params.push_back(segments[i]);
      }
      return out;
    }
    if (!out.allow.empty()) out.allow += ", ";
    out.allow += std::string(boost::beast::http::to_string(routes_[r].verb));
  }
  out.kind = RouteMatch::Kind::kMethodNotAllowed;
  return out;
}

}  // namespace bmos::api
