#include "engine/handlers/data_root.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>

namespace bmos::engine::handlers {

namespace fs = std::filesystem;

namespace {

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string ErrnoText(int err) { return std::strerror(err); }

// Whether `base` is a component-wise prefix of `p` (both canonical, absolute).
bool IsUnder(const fs::path& p, const fs::path& base) {
  auto pi = p.begin();
  for (auto bi = base.begin(); bi != base.end(); ++bi, ++pi) {
    // A trailing empty component ("/data/") matches anything.
    if (bi->empty()) continue;
    if (pi == p.end() || *pi != *bi) return false;
  }
  return true;
}

// 64 random bits for temporary names: a per-process random seed plus a counter, so two
// AtomicFiles created at once never collide.
uint64_t NextTempId() {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }();
  static std::atomic<uint64_t> counter{0};
  // Relaxed: only uniqueness matters, not ordering with other memory.
  uint64_t x = seed + 0x9E3779B97F4A7C15ull * (counter.fetch_add(1, std::memory_order_relaxed) + 1);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x;
}

std::string Hex16(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kHex[v & 0xF];
  return s;
}

}  // namespace

Result<DataRoot> DataRoot::Open(const fs::path& root) {
  if (root.empty()) return Status::InvalidArgument("data root: empty path");
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec)) {
    return Status::InvalidArgument("data root " + root.string() + " is not a folder");
  }
  fs::create_directories(root, ec);
  if (ec) {
    return Status::IOError("data root " + root.string() + ": cannot create: " + ec.message());
  }
  if (!fs::is_directory(root, ec)) {
    return Status::InvalidArgument("data root " + root.string() + " is not a folder");
  }
  fs::path canonical = fs::canonical(root, ec);
  if (ec) return Status::IOError("data root " + root.string() + ": " + ec.message());
  return DataRoot(std::move(canonical));
}

Result<fs::path> DataRoot::Resolve(std::string_view relative, std::string_view field) const {
  if (relative.empty()) return Status::InvalidArgument(std::string(field) + ": empty path");
  if (relative.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(field) + ": the path contains a NUL character");
  }
  const fs::path p(relative);
  if (p.is_absolute() || p.has_root_directory() || p.has_root_name()) {
    return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                   " is absolute; paths are relative to the data root");
  }
  for (const fs::path& component : p) {
    if (component == "..") {
      return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                     " leaves the data root ('..' is not allowed)");
    }
  }
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(root_ / p, ec);
  if (ec) {
    return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                   ": cannot resolve: " + ec.message());
  }
  if (!IsUnder(resolved, root_)) {
    return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                   " resolves outside the data root (through a symbolic link)");
  }
  if (resolved == root_) {
    return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                   " names the data root itself, not a file in it");
  }
  // weakly_canonical keeps the last existing components of a dangling link as they are, so a
  // link to a missing file outside the root would pass the test above; refuse every link left.
  if (fs::is_symlink(fs::symlink_status(resolved, ec))) {
    return Status::InvalidArgument(std::string(field) + " " + Quoted(relative) +
                                   " is a symbolic link whose target is missing");
  }
  return resolved;
}

std::string DataRoot::Relative(const fs::path& absolute) const {
  return absolute.lexically_relative(root_).generic_string();
}

bool DataRoot::Contains(const fs::path& absolute) const { return IsUnder(absolute, root_); }

bool IsTempFileName(std::string_view name) {
  const size_t at = name.rfind(kTempMarker);
  if (name.empty() || name[0] != '.' || at == std::string_view::npos || at == 0) return false;
  const std::string_view hex = name.substr(at + kTempMarker.size());
  if (hex.size() != 16) return false;
  for (const char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// AtomicFile

AtomicFile::AtomicFile(fs::path target, fs::path temp, std::string display, int fd)
    : target_(std::move(target)), temp_(std::move(temp)), display_(std::move(display)), fd_(fd) {}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const fs::path& target,
                                                       std::string display) {
  std::error_code ec;
  const fs::path folder = target.parent_path();
  fs::create_directories(folder, ec);
  if (ec) return Status::IOError(display + ": cannot create its folder: " + ec.message());
  for (int tries = 0;; ++tries) {
    fs::path temp = folder / ("." + target.filename().string() + std::string(kTempMarker) +
                              Hex16(NextTempId()));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      return std::unique_ptr<AtomicFile>(
          new AtomicFile(target, std::move(temp), std::move(display), fd));
    }
    const int err = errno;
    if (err != EEXIST || tries >= 8) {
      return Status::IOError(display + ": cannot create a temporary file in " + folder.string() +
                             ": " + ErrnoText(err));
    }
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

Status AtomicFile::FlushBuffer() {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(display_ + ": write failed: " + ErrnoText(errno));
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return Status::Ok();
}

Status AtomicFile::Append(std::string_view bytes) {
  if (fd_ < 0) return Status::IOError(display_ + ": file already closed");
  buffer_.append(bytes);
  if (buffer_.size() >= (1u << 16)) return FlushBuffer();
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0 || committed_) return Status::IOError(display_ + ": file already closed");
  Status s = FlushBuffer();
  if (s.ok() && ::fsync(fd_) != 0) {
    s = Status::IOError(display_ + ": fsync failed: " + ErrnoText(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && s.ok()) {
    s = Status::IOError(display_ + ": close failed: " + ErrnoText(errno));
  }
  if (!s.ok()) return s;  // the destructor removes the temporary file
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    return Status::IOError(display_ +
                           ": cannot rename the temporary file into place: " + ErrnoText(errno));
  }
  committed_ = true;
  // The rename is durable once the folder is synced; a failure here loses nothing already
  // visible, so it is not reported.
  const int dir = ::open(target_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

Status WriteFileAtomically(const fs::path& target, std::string_view bytes, std::string display) {
  Result<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(target, std::move(display));
  if (!file.ok()) return file.status();
  if (Status s = (*file)->Append(bytes); !s.ok()) return s;
  return (*file)->Commit();
}

Result<std::string> ReadSmallFile(const fs::path& file, std::string_view display) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return Status::NotFound(std::string(display) + " does not exist");
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::IOError(std::string(display) + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IOError(std::string(display) + ": read failed");
  return text;
}

// ---------------------------------------------------------------------------------------------
// Fingerprints

std::string Fnv1a64::ToString() const { return "fnv1a64:" + Hex16(hash_); }

Result<FileFingerprint> StatFile(const fs::path& file, std::string_view display) {
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (ec || !fs::exists(st)) {
    return Status::NotFound(std::string(display) + " does not exist");
  }
  if (!fs::is_regular_file(st)) {
    return Status::InvalidArgument(std::string(display) + " is not a regular file");
  }
  FileFingerprint fp;
  fp.size = fs::file_size(file, ec);
  if (ec) return Status::IOError(std::string(display) + ": " + ec.message());
  const fs::file_time_type mtime = fs::last_write_time(file, ec);
  if (ec) return Status::IOError(std::string(display) + ": " + ec.message());
  fp.mtime_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
  return fp;
}

Result<FileFingerprint> FingerprintFile(const fs::path& file, std::string_view display,
                                        const std::function<bool()>& cancelled) {
  Result<FileFingerprint> fp = StatFile(file, display);
  if (!fp.ok()) return fp;
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::IOError(std::string(display) + ": cannot open");
  Fnv1a64 hash;
  std::string block(1 << 16, '\0');
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    hash.Update(std::string_view(block.data(), static_cast<size_t>(in.gcount())));
    if (cancelled && cancelled()) return Status::Cancelled(std::string(display) + ": cancelled");
  }
  if (in.bad()) return Status::IOError(std::string(display) + ": read failed");
  fp->hash = hash.ToString();
  return fp;
}

}  // namespace bmos::engine::handlers
