// Op family 'norm_rope': validation and dispatch (to be filled in).
#include "../binding.h"
#include "ops.h"

namespace qm {

void register_norm_rope(Napi::Env env, Napi::Object exports) {}

}  // namespace qm
