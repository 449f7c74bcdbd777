// The JSON writer of the API layer: storage's JsonWriter (storage/json_writer.h), plus the
// error body FastAPI writes.
#ifndef BMOS_API_JSON_WRITER_H_
#define BMOS_API_JSON_WRITER_H_

#include <string>
#include <string_view>

#include "storage/json_writer.h"

namespace bmos::api {

using storage::AppendJsonString;
using storage::JsonWriter;

// {"detail": "<message>"}: the error body FastAPI writes, which BMOS clients read.
inline std::string DetailJson(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 16);
  out.append("{\"detail\":");
  AppendJsonString(out, message);
  out.push_back('}');
  return out;
}

}  // namespace bmos::api

#endif  // BMOS_API_JSON_WRITER_H_
