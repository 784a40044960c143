// The host-side rules of the GEMM epilogues (Note [GEMM epilogues] in kernels/gemm_epilogue.h):
// compiled in every build, so that the choice between cuBLASLt and the unfused kernels is tested
// without a GPU.
#include "kernels/gemm_epilogue.h"

#include "core/environment.h"

#include <cstdio>
#include <mutex>
#include <sstream>

namespace kirzl::kernels {

bool gemm_epilogues_enabled() {
  static const bool on = env::flag("KIRZL_GEMM_EPILOGUES");
  return on;
}

const char* epilogue_name(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::BiasGeluAux: return "GELU_AUX_BIAS";
    case GemmEpilogue::DGeluBGrad: return "DGELU_BGRAD";
    case GemmEpilogue::BGradB: return "BGRADB";
  }
  return "?";
}

std::string epilogue_unsupported_reason(const EpilogueProblem& p) {
  std::ostringstream why;
  if (p.dtype != DType::f32 && p.dtype != DType::bf16 && p.dtype != DType::f16) {
    why << "dtype " << dtype_name(p.dtype) << " (epilogues are used for f32, bf16 and f16 only)";
    return why.str();
  }
  if (p.m <= 0 || p.n <= 0 || p.k <= 0) {
    why << "empty problem m=" << p.m << " n=" << p.n << " k=" << p.k;
    return why.str();
  }
  if (p.bias_address % 16 != 0) {
    why << "bias vector not 16-byte aligned (address % 16 = " << p.bias_address % 16 << ")";
    return why.str();
  }
  if (p.epilogue == GemmEpilogue::DGeluBGrad && p.k == 1) {
    // Not in cuBLASLt's documentation, but nvmath-python refuses it ("K=1 is not supported for
    // DGELU epilogs"); the unfused kernels cost nothing worth having at k = 1.
    why << "inner dimension k=1 (DGELU epilogues are not offered for k=1)";
    return why.str();
  }
  const bool has_aux = p.epilogue != GemmEpilogue::BGradB;
  if (has_aux) {
    if (p.aux_address % 16 != 0) {
      why << "aux matrix not 16-byte aligned (address % 16 = " << p.aux_address % 16 << ")";
      return why.str();
    }
    if (p.aux_row_stride % 8 != 0 || p.aux_row_stride < p.n) {
      why << "aux leading dimension " << p.aux_row_stride << " (cuBLASLt needs a multiple of 8, at least n=" << p.n
          << ")";
      return why.str();
    }
  }
  return "";
}

namespace {
std::mutex& fallback_mutex() {
  static auto* mu = new std::mutex;  // never destroyed: used until the process ends
  return *mu;
}
std::vector<std::string>& fallback_list() {
  static auto* list = new std::vector<std::string>;
  return *list;
}
}  // namespace

bool note_epilogue_fallback(const std::string& op, GemmEpilogue e, const std::string& reason) {
  const std::string entry = op + ": " + epilogue_name(e) + ": " + reason;
  {
    std::lock_guard lock(fallback_mutex());
    for (const std::string& s : fallback_list())
      if (s == entry) return false;
    fallback_list().push_back(entry);
  }
  std::fprintf(stderr, "kirzl: %s: cuBLASLt epilogue %s not used (%s); running the unfused kernels\n", op.c_str(),
               epilogue_name(e), reason.c_str());
  return true;
}

std::vector<std::string> epilogue_fallbacks() {
  std::lock_guard lock(fallback_mutex());
  return fallback_list();
}

}  // namespace kirzl::kernels
