// Input and output paths of the handlers: resolution under the data root with the errors the
// handlers give.
//
// Thread-safety: pure functions.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_IO_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_IO_H_

#include <filesystem>
#include <string>
#include <string_view>

#include "engine/handlers/operations.h"

namespace bmos::engine::handlers::internal {

struct FileRef {
  std::filesystem::path path;  // absolute, canonical
  std::string display;         // relative to the data root, as results and errors show it
};

// The existing regular file named by task field `field`. InvalidArgument for a path the data
// root refuses, a missing file, or one that is not a regular file (the input of a task cannot
// appear by retrying).
Result<FileRef> ResolveInput(const Workspace& ws, std::string_view relative,
                             std::string_view field);

// The output file named by task field `field` (it need not exist; it must not be a folder).
Result<FileRef> ResolveOutput(const Workspace& ws, std::string_view relative,
                              std::string_view field);

// "<folder of display>/<stem of display><suffix>": the default name of an output beside an input
// ("data/sales.csv", "_cleaned.csv" -> "data/sales_cleaned.csv").
std::string Beside(std::string_view display, std::string_view suffix);

// Current time as ISO 8601 UTC with milliseconds.
std::string NowIso(const Workspace& ws);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_IO_H_
