#include "engine/handlers/internal/io.h"

#include "storage/task_record.h"

namespace bmos::engine::handlers::internal {

namespace fs = std::filesystem;

Result<FileRef> ResolveInput(const Workspace& ws, std::string_view relative,
                             std::string_view field) {
  Result<fs::path> path = ws.root.Resolve(relative, field);
  if (!path.ok()) return path.status();
  std::error_code ec;
  const fs::file_status st = fs::status(*path, ec);
  if (ec || !fs::exists(st)) {
    return Status::InvalidArgument(std::string(field) + " '" + std::string(relative) +
                                   "' does not exist under the data root");
  }
  if (!fs::is_regular_file(st)) {
    return Status::InvalidArgument(std::string(field) + " '" + std::string(relative) +
                                   "' is not a regular file");
  }
  return FileRef{*path, ws.root.Relative(*path)};
}

Result<FileRef> ResolveOutput(const Workspace& ws, std::string_view relative,
                              std::string_view field) {
  Result<fs::path> path = ws.root.Resolve(relative, field);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (fs::is_directory(*path, ec)) {
    return Status::InvalidArgument(std::string(field) + " '" + std::string(relative) +
                                   "' is a folder");
  }
  return FileRef{*path, ws.root.Relative(*path)};
}

std::string Beside(std::string_view display, std::string_view suffix) {
  const fs::path p(display);
  const fs::path out = p.parent_path() / (p.stem().string() + std::string(suffix));
  return out.generic_string();
}

std::string NowIso(const Workspace& ws) { return storage::FormatIsoTime(ws.clock->NowMillis()); }

}  // namespace bmos::engine::handlers::internal
