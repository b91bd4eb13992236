// Picks the kernel for the active instruction set (see cpu_features.h).
#pragma once
#include "../cpu_features.h"

namespace qm {

// Returns fn_avx512 / fn_avx2 / fn_scalar for the active ISA. On builds without x86 kernels the
// x86 symbols do not exist, so callers use the QM_PICK macro.
#ifdef QM_HAVE_X86_KERNELS
#define QM_PICK(name)                                                             \
  (::qm::active_isa() == ::qm::Isa::Avx512 ? &name##_avx512                       \
   : ::qm::active_isa() == ::qm::Isa::Avx2 ? &name##_avx2 : &name##_scalar)
#else
#define QM_PICK(name) (&name##_scalar)
#endif

}  // namespace qm
