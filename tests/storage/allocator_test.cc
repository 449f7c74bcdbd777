#include "storage/allocator.h"

#include <gtest/gtest.h>

#include <string>

namespace bmos::storage {
namespace {

// This test binary is linked without jemalloc (the executables are; tests/api/server_test and
// bench.taskbench_allocator check those): it runs on glibc's malloc, or a sanitizer's.
TEST(Allocator, NamesGlibcsMallocWhenNoOtherIsLinked) {
  const std::string name = AllocatorName();
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_EQ(name, "AddressSanitizer");
#elif defined(__SANITIZE_THREAD__)
  EXPECT_EQ(name, "ThreadSanitizer");
#else
  ASSERT_EQ(name.rfind("glibc 2.", 0), 0u) << name;
#endif
}

}  // namespace
}  // namespace bmos::storage
