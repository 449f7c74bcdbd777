// DataRoot: the BMOS data folder that every handler path is relative to, and the file primitives
// the handlers share: resolving task paths without leaving the root, writing outputs atomically
// (AtomicFile), and fingerprinting inputs.
//
// Paths in task data are relative to the root. Resolve refuses (InvalidArgument) an absolute path,
// a path with a ".." component, and a path that leaves the root through a symbolic link: it is
// resolved with weakly_canonical and must still lie under the root's canonical path, compared
// component by component (a prefix test on text would let "/data-evil" pass for "/data"). A
// link swapped in between the check and the use is not guarded against: the data root belongs
// to the BMOS process, not to untrusted users.
//
// Thread-safety: a DataRoot is an immutable value; any thread may use it. An AtomicFile belongs
// to one thread.
#ifndef BMOS_ENGINE_HANDLERS_DATA_ROOT_H_
#define BMOS_ENGINE_HANDLERS_DATA_ROOT_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace bmos::engine::handlers {

using storage::Result;
using storage::Status;

class DataRoot {
 public:
  // Creates `root` (and its parents) when missing and returns it in canonical form.
  // InvalidArgument for an empty path or one that exists and is not a folder; IOError when it
  // cannot be created.
  static Result<DataRoot> Open(const std::filesystem::path& root);

  // The canonical path of the root.
  const std::filesystem::path& path() const { return root_; }

  // The absolute, canonical path of `relative` (the task data field `field`, named in errors).
  // The file need not exist. InvalidArgument for an empty path, an absolute path, a ".."
  // component, a path that resolves outside the root or to the root itself, and a path that is
  // a symbolic link left dangling (its target could lie outside).
  Result<std::filesystem::path> Resolve(std::string_view relative, std::string_view field) const;

  // `absolute` relative to the root ("reports/a.json"), as results show paths.
  // REQUIRES: `absolute` lies under the root (as Resolve returns).
  std::string Relative(const std::filesystem::path& absolute) const;

  // Whether `absolute` (canonical) lies under the root or is the root.
  bool Contains(const std::filesystem::path& absolute) const;

 private:
  explicit DataRoot(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

// The marker in the names of temporary files: ".<target name>.bmos-tmp-<16 hex digits>".
inline constexpr std::string_view kTempMarker = ".bmos-tmp-";
// Whether `file_name` (no folder) is one of AtomicFile's temporary files.
bool IsTempFileName(std::string_view file_name);

// An output file written in full or not at all: the bytes go to a temporary file in the target's
// folder, and Commit flushes, fsyncs and renames it over the target (then fsyncs the folder).
// Destroying an uncommitted AtomicFile removes the temporary file, so an error or a cancellation
// leaves no partial output (a crash leaves the temporary file, which system_cleanup removes).
class AtomicFile {
 public:
  // Creates the temporary file beside `target` (creating the target's folder when missing).
  // `display` names the file in errors. IOError when it cannot be created.
  static Result<std::unique_ptr<AtomicFile>> Create(const std::filesystem::path& target,
                                                    std::string display);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes (buffered). IOError when a write fails; the file is then unusable.
  Status Append(std::string_view bytes);
  // Makes the output visible under the target's name. IOError on failure (the temporary file is
  // removed and the target left as it was). At most once.
  Status Commit();

  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  AtomicFile(std::filesystem::path target, std::filesystem::path temp, std::string display, int fd);
  Status FlushBuffer();

  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::string display_;
  int fd_;
  std::string buffer_;
  bool committed_ = false;
};

// Writes `bytes` to `target` through an AtomicFile.
Status WriteFileAtomically(const std::filesystem::path& target, std::string_view bytes,
                           std::string display);

// Reads a whole (small) file. NotFound when missing, IOError otherwise.
Result<std::string> ReadSmallFile(const std::filesystem::path& file, std::string_view display);

// 64-bit FNV-1a, streamed: what models record of their training data.
class Fnv1a64 {
 public:
  void Update(std::string_view bytes) {
    for (const unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 0x100000001b3ull;
    }
  }
  uint64_t value() const { return hash_; }
  // "fnv1a64:<16 hex digits>".
  std::string ToString() const;

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// What models record of a data source to tell whether it changed.
struct FileFingerprint {
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // last modification, ns since the file clock's epoch
  std::string hash{};    // Fnv1a64::ToString of the content; empty when not computed
};

// Size and modification time of `file` (no hash). NotFound when missing, IOError otherwise.
Result<FileFingerprint> StatFile(const std::filesystem::path& file, std::string_view display);

// StatFile plus the content hash (reads the whole file; checks `cancelled` between blocks and
// returns Cancelled when it turns true).
Result<FileFingerprint> FingerprintFile(const std::filesystem::path& file, std::string_view display,
                                        const std::function<bool()>& cancelled);

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_DATA_ROOT_H_
