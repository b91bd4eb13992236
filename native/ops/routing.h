// Routing options shared by the 'routing' and 'moe' op families: parsed and validated once here.
#pragma once
#include <napi.h>

#include "../cpu/routing.h"

namespace qm {

// Reads topK, func, normTopk, correctionBias, nGroup, topkGroup, groupScore, routedScalingFactor
// from opts and validates them against E experts (E_ARGUMENT / E_DTYPE / E_SHAPE / E_DISPOSED).
// `fn` names the calling function in error messages. The bias pointer stays valid while the JS
// tensor is alive (the options object holds it for the duration of the call).
cpu::RouteParams parse_route_options(const Napi::Object& opts, int64_t E, const char* fn);

}  // namespace qm
