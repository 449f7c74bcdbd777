// TaskPool: finished Task objects kept for reuse, process-wide.
//
// Workers give tasks back as they finish them; enqueuing threads take them. Each thread keeps
// its own small cache, so a give or a take is a few instructions on that thread; a full cache
// passes a magazine of kMagazine tasks to a shared depot under one mutex, and an empty cache
// takes a magazine from there (a producer thread takes what the workers gave). Tasks carry no
// engine state once reset, so one pool serves every engine of the process.
//
// Bounded: at most kMaxDepotMagazines magazines in the depot, and 2 * kMagazine tasks in each
// thread's cache (handed to the depot, or freed, when the thread exits). Beyond that, given tasks
// are freed.
#ifndef BMOS_ENGINE_INTERNAL_TASK_POOL_H_
#define BMOS_ENGINE_INTERNAL_TASK_POOL_H_

#include <cstddef>

namespace bmos::engine::internal {

struct Task;

inline constexpr size_t kMagazine = 64;
inline constexpr size_t kMaxDepotMagazines = 64;

// A task reset to a fresh task's state by its last user, or null when the pool has none.
Task* TakePooledTask();
// Keeps `task` (reset to a fresh task's state; nobody else holds it) for reuse, or frees it.
void GivePooledTask(Task* task);
// Tasks in the depot now (tests).
size_t PooledTasksInDepot();

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_TASK_POOL_H_
