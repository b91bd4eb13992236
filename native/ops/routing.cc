// Op family 'routing': validation and dispatch (to be filled in).
#include "../binding.h"
#include "ops.h"

namespace qm {

void register_routing(Napi::Env env, Napi::Object exports) {}

}  // namespace qm
