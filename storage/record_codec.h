// The on-disk form of task records and index keys of the RocksDB store.
//
// A record value starts with its format version (kRecordFormat), so the format can evolve: a
// reader refuses versions it does not know instead of misreading them. Integers are varints
// (zig-zag for signed 64-bit values), strings are length-prefixed; the task id is the key, not
// part of the value. Keys are big-endian ids, so byte order is id order, which is creation order
// (UUIDv7).
#ifndef BMOS_STORAGE_RECORD_CODEC_H_
#define BMOS_STORAGE_RECORD_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"
#include "storage/task_record.h"

namespace bmos::storage::codec {

inline constexpr uint8_t kRecordFormat = 1;
inline constexpr size_t kIdKeySize = 16;

// Appends the value of `record` (everything but the id) to `out`.
void EncodeRecord(const TaskRecord& record, std::string* out);
// Decodes a value written by EncodeRecord for task `id`. Corruption on any malformed byte.
Result<TaskRecord> DecodeRecord(const TaskId& id, std::string_view value);
// Reads only the state and queue of a value (counting live tasks without decoding them).
Status PeekStateAndQueue(std::string_view value, TaskState* state, std::string* queue);

// The 16-byte key of an id, and back (nullopt unless `key` is exactly 16 bytes).
void AppendIdKey(const TaskId& id, std::string* out);
std::string IdKey(const TaskId& id);
std::optional<TaskId> IdFromKey(std::string_view key);

// Index key of a terminal record: one key per record, under the prefix of its (state, queue,
// task name) combination, then the 16-byte id (empty value):
//   't' state-byte varint(len) queue varint(len) name id
// A filter on any of the three reads the prefixes that match it (there are few: terminal states
// times queues times task names), each in id order. The encoding is prefix-free, so the keys of
// one prefix are contiguous and sort by id.
// (Stores of format 1 kept three keys per record instead: 's' state-byte id, 'q' varint(len)
// queue id and 'n' varint(len) name id; opening such a store rewrites them.)
std::string IndexPrefix(TaskState state, std::string_view queue, std::string_view name);
// IndexPrefix, appended to `out` (no allocation when `out` has room).
void AppendIndexPrefix(TaskState state, std::string_view queue, std::string_view name,
                       std::string* out);
// Parses an index prefix (a key without its last 16 bytes); false when malformed.
bool ParseIndexPrefix(std::string_view prefix, TaskState* state, std::string* queue,
                      std::string* name);
inline constexpr char kIndexKind = 't';

// Key of a persisted terminal-count: 'c' varint(len) queue state-byte; value: fixed 8-byte LE.
std::string CountKey(std::string_view queue, TaskState state);
// Parses a CountKey; false when malformed.
bool ParseCountKey(std::string_view key, std::string* queue, TaskState* state);
void EncodeFixed64(uint64_t v, std::string* out);
bool DecodeFixed64(std::string_view in, uint64_t* v);

}  // namespace bmos::storage::codec

#endif  // BMOS_STORAGE_RECORD_CODEC_H_
