// ObjectPool<T>: objects of one type kept for reuse, process-wide, for objects that one thread
// allocates and another frees, millions of times per second (the engine's tasks, the RocksDB
// store's write requests).
//
// Each thread keeps its own small cache, so a give or a take is a few instructions on that
// thread; a full cache passes a magazine of kMagazine objects to a shared depot under one mutex,
// and an empty cache takes a magazine from there (a producer thread takes what the consumers
// gave). Objects must be reset by whoever gives them: the pool hands them out as they came in.
//
// Bounded: at most kMaxDepotMagazines magazines in the depot, and 2 * kMagazine objects in each
// thread's cache (handed to the depot, or deleted, when the thread exits). Beyond that, given
// objects are deleted.
#ifndef BMOS_STORAGE_OBJECT_POOL_H_
#define BMOS_STORAGE_OBJECT_POOL_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>
#include <vector>

namespace bmos::storage {

template <typename T>
class ObjectPool {
 public:
  static constexpr size_t kMagazine = 64;
  static constexpr size_t kMaxDepotMagazines = 64;

  // An object given back earlier (in the state its giver left it), or null when none is kept.
  static T* Take() {
    LocalCache& c = cache_;
    if (c.n == 0) {
      if (!TheDepot().Take(c.objects.data())) return nullptr;
      c.n = kMagazine;
    }
    return c.objects[--c.n];
  }

  // Take(), or a new value-initialised object when none is kept. Never null; the caller owns it.
  static T* TakeOrNew() {
    T* object = Take();
    return object != nullptr ? object : new T();
  }

  // Keeps `object` (nobody else holds it) for reuse, or deletes it.
  static void Give(T* object) {
    LocalCache& c = cache_;
    if (c.n == c.objects.size()) {
      // Full: the older half goes to the depot (or is deleted), the newer, warmer half stays.
      if (!TheDepot().Put(c.objects.data())) {
        for (size_t i = 0; i < kMagazine; ++i) delete c.objects[i];
      }
      std::copy(c.objects.begin() + kMagazine, c.objects.end(), c.objects.begin());
      c.n = kMagazine;
    }
    c.objects[c.n++] = object;
  }

  // Objects in the depot now (tests).
  static size_t InDepot() { return TheDepot().Size(); }

 private:
  using Magazine = std::array<T*, kMagazine>;

  class Depot {
   public:
    // False when the depot is full (the caller keeps the objects).
    bool Put(T* const* objects) {
      std::lock_guard<std::mutex> lock(mu_);
      if (full_.size() >= kMaxDepotMagazines) return false;
      Magazine& m = full_.emplace_back();
      std::copy(objects, objects + kMagazine, m.begin());
      return true;
    }
    // False when the depot is empty.
    bool Take(T** objects) {
      std::lock_guard<std::mutex> lock(mu_);
      if (full_.empty()) return false;
      std::copy(full_.back().begin(), full_.back().end(), objects);
      full_.pop_back();
      return true;
    }
    size_t Size() {
      std::lock_guard<std::mutex> lock(mu_);
      return full_.size() * kMagazine;
    }

   private:
    std::mutex mu_;
    std::vector<Magazine> full_;  // GUARDED_BY(mu_)
  };

  struct LocalCache {
    std::array<T*, 2 * kMagazine> objects{};
    size_t n = 0;

    ~LocalCache() {
      while (n >= kMagazine && TheDepot().Put(&objects[n - kMagazine])) n -= kMagazine;
      while (n > 0) delete objects[--n];
    }
  };

  // Never destroyed: a thread that exits after static destruction still hands its cache back.
  static Depot& TheDepot() {
    static Depot* depot = new Depot;
    return *depot;
  }

  static inline thread_local LocalCache cache_;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_OBJECT_POOL_H_
