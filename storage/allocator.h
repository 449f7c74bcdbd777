// Which malloc the process runs on.
//
// The executables (bmos-taskd, bmos-taskbench, bmos-microbench) link jemalloc unless built with
// -DBMOS_ALLOCATOR=system or a sanitizer (CMakeLists.txt). The engine hands memory from thread
// to thread on its hot path: producers allocate a task's enqueue state and the commit thread
// frees it, workers allocate outcomes that it frees too. glibc's per-thread caches never refill
// across threads, so such frees take the owning arena's lock (contended: futex calls) and go
// through its bins; jemalloc and tcmalloc return them to per-thread caches. In `async` mode on 2
// cores that is 12-20% of the CPU per task (bench/RESULTS.md, session 14). A process that embeds
// the engine chooses its own malloc; link jemalloc there too for the same effect.
#pragma once

#include <string>

namespace bmos::storage {

// "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c", "glibc 2.36" (glibc's malloc),
// or the sanitizer's: "AddressSanitizer", "ThreadSanitizer".
std::string AllocatorName();

}  // namespace bmos::storage
