#include "storage/task_id.h"

#include <algorithm>
#include <atomic>
#include <random>

namespace bmos::storage {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr uint64_t kMaxMs = (uint64_t{1} << 48) - 1;

// The ordered part of the last id made in this process: (unix ms << 12) | 12-bit counter. Every
// new id takes the next value (or the current millisecond's first, if later), so ids increase
// across all threads in the order they are made. Stores that key records by id then receive
// them almost in key order, which keeps their inserts cheap (bench/RESULTS.md, issue 3).
std::atomic<uint64_t> last_ordered{0};

// Per-thread generator state. Trivially constructible so the thread_local needs no init guard on
// the hot path; `seeded` says whether the PRNG has been seeded yet.
struct IdState {
  uint64_t s[4];
  bool seeded;
};
thread_local IdState tls_state;

constexpr uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman and Vigna): fast and statistically strong; ids need uniqueness, not
// secrecy, so a cryptographic generator would only cost time.
uint64_t NextRandom(IdState& st) {
  const uint64_t result = Rotl(st.s[1] * 5, 7) * 9;
  const uint64_t t = st.s[1] << 17;
  st.s[2] ^= st.s[0];
  st.s[3] ^= st.s[1];
  st.s[1] ^= st.s[2];
  st.s[0] ^= st.s[3];
  st.s[2] ^= t;
  st.s[3] = Rotl(st.s[3], 45);
  return result;
}

void Seed(IdState& st) {
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  // Mix in the state's address so threads differ even if random_device were deterministic.
  seed ^= reinterpret_cast<uintptr_t>(&st);
  for (uint64_t& word : st.s) word = SplitMix64(seed);
  st.seeded = true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool IsDashPosition(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

void TaskId::Format(char* out) const {
  size_t pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out[pos++] = '-';
    const uint64_t word = i < 16 ? hi : lo;
    const int shift = 60 - 4 * (i & 15);
    out[pos++] = kHexDigits[(word >> shift) & 0xF];
  }
}

std::string TaskId::ToString() const {
  std::string out(36, '\0');
  Format(out.data());
  return out;
}

std::optional<TaskId> TaskId::Parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  TaskId id;
  int nibbles = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (IsDashPosition(i)) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const int v = HexValue(text[i]);
    if (v < 0) return std::nullopt;
    uint64_t& word = nibbles < 16 ? id.hi : id.lo;
    word = (word << 4) | static_cast<uint64_t>(v);
    ++nibbles;
  }
  return id;
}

TaskId NewTaskId(int64_t now_ms) {
  IdState& st = tls_state;
  if (!st.seeded) Seed(st);
  const uint64_t ms = now_ms < 0 ? 0 : std::min<uint64_t>(static_cast<uint64_t>(now_ms), kMaxMs);
  // Same millisecond, or a clock that stepped back: the counter goes on (and overflows into the
  // next millisecond, as RFC 9562 section 6.2 allows), so ids never repeat or go backwards.
  uint64_t last = last_ordered.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    // At the last representable millisecond (year 10889) the value saturates.
    next = std::min(std::max(last + 1, ms << 12), (kMaxMs << 12) | 0xFFF);
  } while (!last_ordered.compare_exchange_weak(last, next, std::memory_order_relaxed));
  TaskId id;
  id.hi = ((next >> 12) << 16) | 0x7000 | (next & 0xFFF);
  id.lo = (NextRandom(st) >> 2) | 0x8000000000000000ull;
  return id;
}

}  // namespace bmos::storage
