// Op family 'elementwise': validation and dispatch (to be filled in).
#include "../binding.h"
#include "ops.h"

namespace qm {

void register_elementwise(Napi::Env env, Napi::Object exports) {}

}  // namespace qm
