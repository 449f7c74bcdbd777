#include "storage/allocator.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>

#include <cstddef>

namespace bmos::storage {

std::string AllocatorName() {
#if defined(__SANITIZE_ADDRESS__)
  return "AddressSanitizer";
#elif defined(__SANITIZE_THREAD__)
  return "ThreadSanitizer";
#else
  // jemalloc's control interface, present when it is the process's malloc (looked up rather
  // than linked, so this builds and answers with either).
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  if (auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"))) {
    const char* version = nullptr;
    size_t size = sizeof(version);
    if (mallctl("version", &version, &size, nullptr, 0) == 0 && version != nullptr) {
      return std::string("jemalloc ") + version;
    }
    return "jemalloc";
  }
  return std::string("glibc ") + gnu_get_libc_version();
#endif
}

}  // namespace bmos::storage
