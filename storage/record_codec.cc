#include "storage/record_codec.h"

#include <cstring>
#include <optional>

namespace bmos::storage::codec {
namespace {

// Each field is built in a local buffer and appended once: a push_back per byte costs a
// capacity check and a size update each (encoding was ~8% of all CPU in `async` runs).
void PutVarint(uint64_t v, std::string* out) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

void PutSigned(int64_t v, std::string* out) {
  PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), out);
}

void PutString(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

// A bounds-checked reader; the first failure sticks and every later read fails too.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }

  uint8_t Byte() {
    if (!ok_ || in_.empty()) return Fail(), 0;
    const auto b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      const uint8_t b = Byte();
      if (!ok_) return 0;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail(), 0;
  }
  int64_t Signed() {
    const uint64_t u = Varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  int32_t Int32() {
    const uint64_t v = Varint();
    if (v > INT32_MAX) return Fail(), 0;
    return static_cast<int32_t>(v);
  }
  std::string_view String() {
    const uint64_t n = Varint();
    if (!ok_ || n > in_.size()) return Fail(), std::string_view();
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  double Double() {
    if (!ok_ || in_.size() < 8) return Fail(), 0.0;
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i)
      bits |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

 private:
  void Fail() { ok_ = false; }
  std::string_view in_;
  bool ok_ = true;
};

Status Corrupt(const TaskId& id, std::string_view what) {
  return Status::Corruption("record of task " + id.ToString() + ": " + std::string(what));
}

std::string PrefixOf(char kind, std::string_view value) {
  std::string out(1, kind);
  PutString(value, &out);
  return out;
}

}  // namespace

void EncodeRecord(const TaskRecord& r, std::string* out) {
  const TaskSpec& spec = *r.spec;
  out->push_back(static_cast<char>(kRecordFormat));
  out->push_back(static_cast<char>(r.state));
  PutString(spec.queue, out);  // state and queue first: PeekStateAndQueue reads only these
  out->push_back(static_cast<char>(spec.priority));
  PutString(spec.name, out);
  PutString(spec.data_json, out);
  PutVarint(static_cast<uint32_t>(spec.max_retries), out);
  PutSigned(spec.timeout_ms, out);
  PutSigned(spec.eta_ms, out);
  PutString(spec.unique_key, out);
  PutSigned(spec.created_ms, out);
  PutVarint(static_cast<uint32_t>(r.retry_count), out);
  PutSigned(r.run_at_ms, out);
  PutSigned(r.started_ms, out);
  PutSigned(r.completed_ms, out);
  uint64_t bits;
  std::memcpy(&bits, &r.progress, sizeof bits);
  char progress[8];
  for (int i = 0; i < 8; ++i) progress[i] = static_cast<char>(bits >> (8 * i));
  out->append(progress, sizeof progress);
  PutString(r.progress_message, out);
  PutString(r.result_json, out);
  PutString(r.error, out);
}

Result<TaskRecord> DecodeRecord(const TaskId& id, std::string_view value) {
  Reader in(value);
  const uint8_t format = in.Byte();
  if (!in.ok()) return Corrupt(id, "empty value");
  if (format != kRecordFormat) {
    return Corrupt(id, "format version " + std::to_string(format) + " is not known (this build " +
                           "reads version " + std::to_string(kRecordFormat) + ")");
  }
  auto spec = std::make_shared<TaskSpec>();
  TaskRecord r;
  spec->id = id;
  const uint8_t state = in.Byte();
  spec->queue = in.String();
  const uint8_t priority = in.Byte();
  spec->name = in.String();
  spec->data_json = in.String();
  spec->max_retries = in.Int32();
  spec->timeout_ms = in.Signed();
  spec->eta_ms = in.Signed();
  spec->unique_key = in.String();
  spec->created_ms = in.Signed();
  r.retry_count = in.Int32();
  r.run_at_ms = in.Signed();
  r.started_ms = in.Signed();
  r.completed_ms = in.Signed();
  r.progress = in.Double();
  r.progress_message = in.String();
  r.result_json = in.String();
  r.error = in.String();
  if (!in.ok()) return Corrupt(id, "truncated or malformed value");
  if (!in.done()) return Corrupt(id, "unexpected bytes after the record");
  if (state >= kTaskStateCount) return Corrupt(id, "state " + std::to_string(state));
  if (priority >= kPriorityCount) return Corrupt(id, "priority " + std::to_string(priority));
  r.state = static_cast<TaskState>(state);
  spec->priority = static_cast<Priority>(priority);
  r.spec = std::move(spec);
  return r;
}

Status PeekStateAndQueue(std::string_view value, TaskState* state, std::string* queue) {
  Reader in(value);
  const uint8_t format = in.Byte();
  const uint8_t s = in.Byte();
  std::string_view q = in.String();
  if (!in.ok() || format != kRecordFormat || s >= kTaskStateCount) {
    return Status::Corruption("malformed task record header");
  }
  *state = static_cast<TaskState>(s);
  queue->assign(q);
  return Status::Ok();
}

void AppendIdKey(const TaskId& id, std::string* out) {
  char key[kIdKeySize];
  for (int i = 0; i < 8; ++i) {
    key[i] = static_cast<char>(id.hi >> (8 * (7 - i)));
    key[8 + i] = static_cast<char>(id.lo >> (8 * (7 - i)));
  }
  out->append(key, sizeof key);
}

std::string IdKey(const TaskId& id) {
  std::string key;
  key.reserve(kIdKeySize);
  AppendIdKey(id, &key);
  return key;
}

std::optional<TaskId> IdFromKey(std::string_view key) {
  if (key.size() != kIdKeySize) return std::nullopt;
  TaskId id;
  for (int i = 0; i < 8; ++i) id.hi = (id.hi << 8) | static_cast<uint8_t>(key[i]);
  for (int i = 8; i < 16; ++i) id.lo = (id.lo << 8) | static_cast<uint8_t>(key[i]);
  return id;
}

void AppendIndexPrefix(TaskState state, std::string_view queue, std::string_view name,
                       std::string* out) {
  out->push_back(kIndexKind);
  out->push_back(static_cast<char>(state));
  PutString(queue, out);
  PutString(name, out);
}

std::string IndexPrefix(TaskState state, std::string_view queue, std::string_view name) {
  std::string out;
  AppendIndexPrefix(state, queue, name, &out);
  return out;
}

bool ParseIndexPrefix(std::string_view prefix, TaskState* state, std::string* queue,
                      std::string* name) {
  if (prefix.empty() || prefix.front() != kIndexKind) return false;
  Reader in(prefix.substr(1));
  const uint8_t s = in.Byte();
  std::string_view q = in.String();
  std::string_view n = in.String();
  if (!in.ok() || !in.done() || s >= kTaskStateCount) return false;
  *state = static_cast<TaskState>(s);
  queue->assign(q);
  name->assign(n);
  return true;
}

std::string CountKey(std::string_view queue, TaskState state) {
  std::string key = PrefixOf('c', queue);
  key.push_back(static_cast<char>(state));
  return key;
}

bool ParseCountKey(std::string_view key, std::string* queue, TaskState* state) {
  if (key.empty() || key.front() != 'c') return false;
  Reader in(key.substr(1));
  std::string_view q = in.String();
  const uint8_t s = in.Byte();
  if (!in.ok() || !in.done() || s >= kTaskStateCount) return false;
  queue->assign(q);
  *state = static_cast<TaskState>(s);
  return true;
}

void EncodeFixed64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool DecodeFixed64(std::string_view in, uint64_t* v) {
  if (in.size() != 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return true;
}

}  // namespace bmos::storage::codec
