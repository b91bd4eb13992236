// Op family 'attention': validation and dispatch (to be filled in).
#include "../binding.h"
#include "ops.h"

namespace qm {

void register_attention(Napi::Env env, Napi::Object exports) {}

}  // namespace qm
