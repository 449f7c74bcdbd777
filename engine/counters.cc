#include "engine/internal/counters.h"

namespace bmos::engine::internal {

unsigned ThreadSlot() {
  static std::atomic<unsigned> next{0};
  // Relaxed: only uniqueness-ish matters, and collisions merely share a shard.
  thread_local unsigned slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

}  // namespace bmos::engine::internal
