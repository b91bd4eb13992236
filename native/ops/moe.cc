// Op family 'moe': validation and dispatch (to be filled in).
#include "../binding.h"
#include "ops.h"

namespace qm {

void register_moe(Napi::Env env, Napi::Object exports) {}

}  // namespace qm
