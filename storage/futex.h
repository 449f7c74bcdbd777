// Futex waits on a std::atomic<uint32_t>, without spinning first.
//
// std::atomic<T>::wait in libstdc++ 12 spins, then calls sched_yield a dozen times before it
// sleeps. With dozens of waiting threads on two cores those yields hand the CPU back and forth
// and cost more than the sleep they avoid (seen in bmos-taskbench profiles: a fifth of all CPU in
// sched_yield). These go straight to the kernel. Linux only, as the project is.
#ifndef BMOS_STORAGE_FUTEX_H_
#define BMOS_STORAGE_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <ctime>

namespace bmos::storage {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

// Sleeps while `word` holds `expected` (may return spuriously: callers loop on their condition).
inline void FutexWait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

// FutexWait for at most `timeout` (relative).
inline void FutexWaitFor(std::atomic<uint32_t>& word, uint32_t expected, const timespec& timeout) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &timeout,
          nullptr, 0);
}

// FutexWait that only a FutexWakeBitset whose mask shares a bit with `bits` wakes.
// REQUIRES: bits != 0.
inline void FutexWaitBitset(std::atomic<uint32_t>& word, uint32_t expected, uint32_t bits) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected,
          nullptr, nullptr, bits);
}

// Wakes every thread sleeping on `word` in FutexWaitBitset with a bit of `bits`.
inline void FutexWakeBitset(std::atomic<uint32_t>& word, uint32_t bits) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_BITSET_PRIVATE, INT_MAX,
          nullptr, nullptr, bits);
}

// Wakes at most `count` threads sleeping on `word`.
inline void FutexWake(std::atomic<uint32_t>& word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

inline void FutexWakeAll(std::atomic<uint32_t>& word) { FutexWake(word, INT_MAX); }

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_FUTEX_H_
