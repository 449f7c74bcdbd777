// RouteTable: maps an HTTP method and path to one of the server's routes, with its path
// parameters and the permission it needs. Literal segments win over parameters, so
// `/tasks/stats/overview` never reads as task "stats"; the scheduler's `/tasks/scheduled/...`
// routes slot in the same way.
//
//   RouteTable routes;
//   routes.Add(Verb::get, "/api/v1/tasks/{task_id}", kGetTask, Permission::kTaskRead);
//   RouteMatch m = routes.Match(Verb::get, "/api/v1/tasks/0193...");  // m.route->id == kGetTask
//
// Thread-safety: Add before the server starts; Match from any thread afterwards (const).
#ifndef BMOS_API_ROUTER_H_
#define BMOS_API_ROUTER_H_

#include <boost/beast/http/verb.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/jwt.h"

namespace bmos::api {

using Verb = boost::beast::http::verb;

struct Route {
  int id = 0;  // the caller's route number (also its metrics index)
  Verb verb = Verb::get;
  std::string pattern;  // "/api/v1/tasks/{task_id}"
  std::string name;     // "GET /api/v1/tasks/{task_id}": the metrics label
  // The permission a token must carry; nullopt: no authentication (health, metrics).
  std::optional<Permission> permission;
};

struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;  // kFound
  // kFound: the values of the pattern's {parameters}, in order (views into the matched path).
  std::vector<std::string_view> params;
  std::string allow;  // kMethodNotAllowed: the methods the path accepts, "GET, DELETE"
};

class RouteTable {
 public:
  // Adds a route. A trailing slash in `pattern` is significant only as FastAPI treats it: the
  // path matches with or without it. REQUIRES: the pattern starts with '/'; no two routes share
  // verb and pattern.
  void Add(Verb verb, std::string_view pattern, int id, std::optional<Permission> permission);

  // The route for `verb` and `path` (the target without its query string).
  RouteMatch Match(Verb verb, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "{...}" marks a parameter
  };
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
};

// Splits a request target into its path and query string ("a/b?x=1" -> "a/b", "x=1").
inline std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

}  // namespace bmos::api

#endif  // BMOS_API_ROUTER_H_
