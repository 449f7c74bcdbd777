// The handlers bmos-taskd registers with --with-test-handlers, for smoke tests and benchmarks:
//   bmos.noop   returns null at once.
//   bmos.sleep  {"ms": N} sleeps N ms (0..3,600,000), watching its cancel token every few ms,
//               and returns {"slept_ms": N}; cancelled, it ends CANCELLED.
//   bmos.fail   {"times": K} fails its first K attempts ("bmos.fail: attempt A of K"), then
//               returns {"attempts": A}.
//   bmos.echo   returns its task data.
// Thread-safety: handlers run on engine workers, any number at once; they keep no state.
#ifndef BMOS_API_TEST_HANDLERS_H_
#define BMOS_API_TEST_HANDLERS_H_

#include "engine/engine.h"

namespace bmos::api {

// Registers the four handlers on the "default" queue. Fails as RegisterHandler fails (a name
// already registered).
storage::Status RegisterTestHandlers(engine::Engine& engine);

}  // namespace bmos::api

#endif  // BMOS_API_TEST_HANDLERS_H_
