// CUDA GEMM through cuBLASLt: one cublasLtMatmul per call (batches through its strided-batch
// layout), the algorithm chosen by cuBLASLt's heuristic once per problem and cached.
//
// Note [row-major through column-major cuBLASLt]
// kirzl matrices are row-major by default and cuBLASLt's are column-major. The bytes of a
// row-major M x N matrix C are those of the column-major N x M matrix C^T, so C = A'B' is issued
// as C^T = B'^T A'^T: cuBLASLt's first operand is B', its second A', with m = N, n = M, k = K.
// Each operand is passed where it lies, never copied: a row-major operand X (unit column stride)
// is, read column-major, X^T with ld = its row stride, which is what the product needs (op N);
// a column-major one (a transposed view: unit row stride) reads as X itself, and op T turns it
// into X^T. Only operands with neither stride 1 (or a batch layout that no single batch stride
// describes) are made contiguous first. The output must be row-major; otherwise the product goes
// to a contiguous temporary that is copied back.
//
// Note [cuBLASLt algorithm cache]
// cublasLtMatmulAlgoGetHeuristic costs tens of microseconds, more than a small GEMM, so its answer
// is cached per problem: device, m, n, k, leading dims, batch count and strides, dtypes, compute
// type (TF32 or not), transposes, epilogue and the alignment of each pointer (cuBLASLt picks
// vectorised kernels from the alignment it is promised, so a less aligned pointer must not reuse
// an algorithm chosen for a more aligned one). A problem with no algorithm is cached too.
#include <cublasLt.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "kernels/copy.h"
#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/library_context.h"
#include "kernels/fused_bias_gelu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/unary.h"
#include "kirzl/ops/linalg.hpp"
#include "kirzl/ops/reduce.hpp"

namespace kirzl::kernels::cuda {

namespace {

// Workspace offered to cuBLASLt: enough for its split-K and stream-K kernels on Hopper.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cudaDataType_t cuda_type_of(DType dt) {
  switch (dt) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: KIRZL_FAIL(ErrorCode::Internal, "gemm: no cuBLAS type for ", dtype_name(dt));
  }
}

// Largest power of two (up to 256) that divides the address: the alignment cuBLASLt is promised.
uint32_t alignment_of(const void* p) {
  auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 1;
  while (a < 256 && v % (2 * a) == 0) a *= 2;
  return a;
}

// Where a logical r x c matrix with element (i, j) at i * rs + j * cs lies: row-major (unit
// column stride) or column-major (unit row stride), with its leading dimension. An extent of 1
// places no constraint on its stride. False when it is neither (e.g. a stride-0 expand).
bool storage_of(int64_t r, int64_t c, int64_t rs, int64_t cs, bool& row_major, int64_t& ld) {
  if ((cs == 1 || c == 1) && (r == 1 || rs >= std::max<int64_t>(c, 1))) {
    row_major = true;
    ld = r > 1 ? rs : std::max<int64_t>(c, 1);
    return true;
  }
  if ((rs == 1 || r == 1) && (c == 1 || cs >= std::max<int64_t>(r, 1))) {
    row_major = false;
    ld = c > 1 ? cs : std::max<int64_t>(r, 1);
    return true;
  }
  return false;
}

// The batch dims [0, nb) of t as one stride (cuBLASLt's strided batch), when they collapse:
// each non-unit dim's stride is the next one's stride times its size. Stride 0 (an expanded
// operand) collapses as long as every batch dim is expanded.
bool collapse_batch(const Tensor& t, int64_t nb, int64_t& stride) {
  stride = 0;
  bool have = false;
  int64_t expect = 0;
  for (int64_t d = nb - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (!have) {
      stride = t.stride(d);
      have = true;
    } else if (t.stride(d) != expect) {
      return false;
    }
    expect = t.stride(d) * t.size(d);
  }
  return true;
}

// One operand as a column-major matrix for cuBLASLt.
struct Operand {
  const void* ptr;
  uint64_t rows, cols;  // of the stored column-major matrix
  int64_t ld;
  int64_t batch_stride;
  cublasOperation_t op;
};

// RAII owners of cuBLASLt descriptors.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  MatmulDesc(cublasComputeType_t compute, cudaDataType_t scale) {
    KIRZL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, compute, scale));
  }
  ~MatmulDesc() { (void)cublasLtMatmulDescDestroy(d); }
  template <typename V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& v) {
    KIRZL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
  }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld, int64_t batch, int64_t batch_stride) {
    KIRZL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, rows, cols, ld));
    if (batch > 1) {
      const auto count = static_cast<int32_t>(batch);
      KIRZL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      KIRZL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &batch_stride,
                                                          sizeof(batch_stride)));
    }
  }
  ~Layout() { (void)cublasLtMatrixLayoutDestroy(l); }
};
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference() { KIRZL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~Preference() { (void)cublasLtMatmulPreferenceDestroy(p); }
  template <typename V>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const V& v) {
    KIRZL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
  }
};

// See Note [cuBLASLt algorithm cache].
using AlgoKey = std::array<int64_t, 22>;

std::optional<cublasLtMatmulAlgo_t> cached_algo(const AlgoKey& key, cublasLtHandle_t handle, const MatmulDesc& desc,
                                                const Layout& la, const Layout& lb, const Layout& lc,
                                                const std::array<uint32_t, 4>& align) {
  static std::mutex* mu = new std::mutex;  // never destroyed: used until the process ends
  static auto* cache = new std::map<AlgoKey, std::optional<cublasLtMatmulAlgo_t>>;
  {
    std::lock_guard lock(*mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  Preference pref;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kWorkspaceBytes));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align[0]);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align[1]);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align[2]);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align[3]);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, desc.d, la.l, lb.l, lc.l, lc.l, pref.p, 1, &result, &found);
  std::optional<cublasLtMatmulAlgo_t> algo;
  if (st == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS) algo = result.algo;
  else if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) KIRZL_CUBLAS_CHECK(st);
  std::lock_guard lock(*mu);
  cache->emplace(key, algo);  // a racing thread may have inserted the same answer first
  return algo;
}

void check_operands(const char* op, const Tensor& out, const Tensor& a, const Tensor& b) {
  KIRZL_CHECK(out.device().is_cuda() && a.device() == out.device() && b.device() == out.device(), op,
              ": expected all operands on one CUDA device, got out ", out.describe(), ", a ", a.describe(), ", b ",
              b.describe());
  KIRZL_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), op, ": expected one dtype, got out ",
              out.describe(), ", a ", a.describe(), ", b ", b.describe());
  KIRZL_CHECK(is_floating(out.dtype()), op, ": expected a floating dtype (f32, f64, bf16, f16), got out ",
              out.describe());
}

// An epilogue for run(): cuBLASLt's mode, the bias (or bias-gradient) vector and the aux matrix
// with its leading dimension (Note [GEMM epilogues]); `op` names the caller in errors.
struct Epilogue {
  const char* op;
  cublasLtEpilogue_t mode;
  const void* bias;
  void* aux;
  int64_t aux_ld;
};

// The product through cuBLASLt, finished by `epi` when given. Returns false, having written
// nothing, when cuBLASLt offers no algorithm for that epilogue or rejects the call as not
// supported (the caller falls back); every other failing status is an Error{Cuda} naming the op,
// the shapes and the dtype.
bool run(Tensor& out, Tensor a, Tensor b, bool trans_a, bool trans_b, double alpha, double beta,
         const Epilogue* epi) {
  const char* op = epi ? epi->op : "gemm";
  KIRZL_CHECK(out.dim() >= 2 && a.dim() == out.dim() && b.dim() == out.dim(), op,
              ": expected operands of one rank >= 2, got out ", out.describe(), ", a ", a.describe(), ", b ",
              b.describe());
  const int64_t nb = out.dim() - 2;
  const int64_t M = out.size(-2), N = out.size(-1);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Ma = trans_a ? a.size(-1) : a.size(-2);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2), Nb = trans_b ? b.size(-2) : b.size(-1);
  bool shapes_ok = Ma == M && Kb == K && Nb == N;
  int64_t batch = 1;
  for (int64_t d = 0; d < nb; ++d) {
    shapes_ok = shapes_ok && a.size(d) == out.size(d) && b.size(d) == out.size(d);
    batch *= out.size(d);
  }
  KIRZL_CHECK(shapes_ok, op, ": shapes do not form a product: out ", out.describe(), ", a ", a.describe(),
              trans_a ? " (transposed)" : "", ", b ", b.describe(), trans_b ? " (transposed)" : "");
  if (M == 0 || N == 0 || batch == 0) return true;
  if (K == 0) {  // empty inner dimension: the product is zero
    if (epi) return false;  // the unfused kernels handle it
    else if (beta == 0.0) out.zero_();
    else if (beta != 1.0) out.mul_(beta);
    return true;
  }
  KIRZL_CHECK(batch <= INT32_MAX, op, ": ", batch, " matrices exceed cuBLASLt's batch count (out ", out.describe(), ")");

  // Logical A' = op(a) [M, K] and B' = op(b) [K, N]: their strides.
  auto strides = [](const Tensor& t, bool trans) {
    return trans ? std::array<int64_t, 2>{t.stride(-1), t.stride(-2)} : std::array<int64_t, 2>{t.stride(-2), t.stride(-1)};
  };
  bool a_row = false, b_row = false, o_row = false;
  int64_t lda = 0, ldb = 0, ldo = 0, sa = 0, sb = 0, so = 0;
  auto place = [&](Tensor& t, bool trans, int64_t r, int64_t c, bool& row, int64_t& ld, int64_t& bs) {
    auto s = strides(t, trans);
    if (!collapse_batch(t, nb, bs) || !storage_of(r, c, s[0], s[1], row, ld)) {
      t = t.contiguous();
      s = strides(t, trans);
      bool ok = collapse_batch(t, nb, bs) && storage_of(r, c, s[0], s[1], row, ld);
      KIRZL_INTERNAL_ASSERT(ok, "gemm: a contiguous operand has no cuBLAS layout: ", t.describe());
    }
  };
  place(a, trans_a, M, K, a_row, lda, sa);
  place(b, trans_b, K, N, b_row, ldb, sb);

  // The output must be row-major with a true batch stride (each batch its own matrix).
  Tensor dst = out;
  {
    bool ok = collapse_batch(out, nb, so) && storage_of(M, N, out.stride(-2), out.stride(-1), o_row, ldo) && o_row &&
              (batch == 1 || so != 0);
    if (!ok) {
      if (epi) return false;  // an epilogue writes aux and bias beside out: never through a copy
      dst = beta != 0.0 ? out.contiguous() : empty(out.shape(), options_of(out));  // a copy: out is not contiguous
      bool ok2 = collapse_batch(dst, nb, so) && storage_of(M, N, dst.stride(-2), dst.stride(-1), o_row, ldo);
      KIRZL_INTERNAL_ASSERT(ok2 && o_row, "gemm: a contiguous output has no cuBLAS layout: ", dst.describe());
    }
  }
  if (batch == 1) sa = sb = so = 0;

  // See Note [row-major through column-major cuBLASLt]: first operand B', second A'.
  const Operand ca{b.data_ptr(), b_row ? uint64_t(N) : uint64_t(K), b_row ? uint64_t(K) : uint64_t(N), ldb, sb,
                   b_row ? CUBLAS_OP_N : CUBLAS_OP_T};
  const Operand cb{a.data_ptr(), a_row ? uint64_t(K) : uint64_t(M), a_row ? uint64_t(M) : uint64_t(K), lda, sa,
                   a_row ? CUBLAS_OP_N : CUBLAS_OP_T};

  const DType dt = out.dtype();
  const cudaDataType_t type = cuda_type_of(dt);
  const bool tf32 = dt == DType::f32 && tf32_allowed();
  const cublasComputeType_t compute = dt == DType::f64 ? CUBLAS_COMPUTE_64F
                                      : tf32           ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                       : CUBLAS_COMPUTE_32F;
  const cudaDataType_t scale_type = dt == DType::f64 ? CUDA_R_64F : CUDA_R_32F;

  const int device = out.device().index();
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = cuda_rt::current_stream(device);
  cublasLtHandle_t handle = cublaslt_handle(device);

  MatmulDesc desc(compute, scale_type);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSA, int32_t(ca.op));
  desc.set(CUBLASLT_MATMUL_DESC_TRANSB, int32_t(cb.op));
  uint32_t bias_align = 0, aux_align = 0;
  if (epi) {
    desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t(epi->mode));
    if (epi->bias) {
      // A bias read (BIAS, GELU_AUX_BIAS) or a bias gradient written (DGELU_BGRAD, BGRADB): in
      // both cases of the output's element type here.
      desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, epi->bias);
      desc.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, int32_t(type));
      bias_align = alignment_of(epi->bias);
    }
    if (epi->aux) {
      // The GELU input, written (GELU_AUX_BIAS) or read (DGELU_BGRAD); its element type is left
      // at cuBLASLt's default, the output's.
      desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, epi->aux);
      desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, epi->aux_ld);
      aux_align = alignment_of(epi->aux);
    }
  }
  Layout la(type, ca.rows, ca.cols, ca.ld, batch, ca.batch_stride);
  Layout lb(type, cb.rows, cb.cols, cb.ld, batch, cb.batch_stride);
  Layout lc(type, uint64_t(N), uint64_t(M), ldo, batch, so);

  const std::array<uint32_t, 4> align{alignment_of(ca.ptr), alignment_of(cb.ptr), alignment_of(dst.data_ptr()),
                                      alignment_of(dst.data_ptr())};
  const AlgoKey key{device,     N,          M,         K,           ca.ld,    cb.ld,    ldo,
                    batch,      sa,         sb,        so,          int64_t(type), int64_t(compute), int64_t(ca.op),
                    int64_t(cb.op), epi ? int64_t(epi->mode) : 0, align[0], align[1], align[2], bias_align, aux_align,
                    epi ? epi->aux_ld : 0};
  std::optional<cublasLtMatmulAlgo_t> algo = cached_algo(key, handle, desc, la, lb, lc, align);
  if (!algo) {
    if (epi) return false;
    KIRZL_FAIL(ErrorCode::Unsupported, op, ": cuBLASLt has no algorithm for out ", out.describe(), " = a ",
               a.describe(), trans_a ? "^T" : "", " x b ", b.describe(), trans_b ? "^T" : "");
  }

  Tensor ws = stream_workspace(device, stream, kWorkspaceBytes);
  const float alpha32 = float(alpha), beta32 = float(beta);
  const void* alpha_p = dt == DType::f64 ? static_cast<const void*>(&alpha) : &alpha32;
  const void* beta_p = dt == DType::f64 ? static_cast<const void*>(&beta) : &beta32;
  const cublasStatus_t st = cublasLtMatmul(handle, desc.d, alpha_p, ca.ptr, la.l, cb.ptr, lb.l, beta_p, dst.data_ptr(),
                                           lc.l, dst.data_ptr(), lc.l, &*algo, ws.data_ptr(), kWorkspaceBytes, stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED && epi) return false;
  if (st != CUBLAS_STATUS_SUCCESS)
    KIRZL_FAIL(ErrorCode::Cuda, op, ": cublasLtMatmul failed: ", cublasGetStatusName(st), " (", cublasGetStatusString(st),
               ") for out ", out.describe(), " = a ", a.describe(), trans_a ? "^T" : "", " x b ", b.describe(),
               trans_b ? "^T" : "", epi ? " with epilogue " : "", epi ? std::to_string(int(epi->mode)) : std::string());
  if (!dst.is_same(out)) kernels::copy(out, dst);
  return true;
}

}  // namespace

void gemm(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha, double beta) {
  check_operands("gemm", out, a, b);
  run(out, a, b, trans_a, trans_b, alpha, beta, nullptr);
}

void gemm_bias(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  check_operands("gemm_bias", out, a, b);
  KIRZL_CHECK(out.dim() == 2 && a.dim() == 2 && b.dim() == 2, "gemm_bias: expected 2-D out, a and b, got out ",
              out.describe(), ", a ", a.describe(), ", b ", b.describe());
  KIRZL_CHECK(bias.device() == out.device() && bias.dtype() == out.dtype() && bias.dim() == 1 &&
                  bias.size(0) == out.size(1) && bias.is_contiguous(),
              "gemm_bias: expected a contiguous bias [", out.size(1), "] of out's dtype and device, got bias ",
              bias.describe(), " for out ", out.describe());
  // cuBLASLt reads the bias vector with vector loads: an offset view that breaks element-size
  // alignment never reaches it.
  const bool bias_aligned = alignment_of(bias.data_ptr()) >= 16;
  const Epilogue epi{"gemm_bias", CUBLASLT_EPILOGUE_BIAS, bias.data_ptr(), nullptr, 0};
  if (bias_aligned && run(out, a, b, false, true, 1.0, 0.0, &epi)) return;
  kernels::copy(out, bias);  // no epilogue for this problem: bias rows, then out += a b^T
  run(out, a, b, false, true, 1.0, 1.0, nullptr);
}

// ---- the epilogues of Note [GEMM epilogues] ----

namespace {

std::string shapes_of(std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  std::string s;
  for (const auto& [name, t] : ts) {
    if (!s.empty()) s += ", ";
    s += std::string(name) + " " + (t->defined() ? t->describe() : std::string("undefined"));
  }
  return s;
}

void check_epilogue_tensor(const char* op, const Tensor& t, const char* name, const Shape& shape, const Tensor& like,
                           const std::string& all) {
  KIRZL_CHECK(t.defined() && t.device() == like.device() && t.dtype() == like.dtype() && t.shape() == shape &&
                  t.is_contiguous(),
              op, ": expected ", name, " to be a contiguous ", shape.str(), " of ", dtype_name(like.dtype()), " on ",
              like.device().str(), ", got ", all);
}

// Whether the epilogue may be tried; records the reason once otherwise.
bool epilogue_allowed(const char* op, const EpilogueProblem& p) {
  const std::string why = epilogue_unsupported_reason(p);
  if (why.empty()) return true;
  note_epilogue_fallback(op, p.epilogue, why);
  return false;
}

uintptr_t address_of(const Tensor& t) { return t.defined() ? reinterpret_cast<uintptr_t>(t.data_ptr()) : 0; }

}  // namespace

void gemm_bias_gelu(Tensor& y, Tensor& pre, const Tensor& a, const Tensor& w, const Tensor& bias) {
  const char* op = "gemm_bias_gelu";
  check_operands(op, y, a, w);
  const std::string all = shapes_of({{"y", &y}, {"pre", &pre}, {"a", &a}, {"w", &w}, {"bias", &bias}});
  KIRZL_CHECK(a.dim() == 2 && w.dim() == 2 && a.size(1) == w.size(1), op, ": expected a [M, K] and w [N, K], got ", all);
  const int64_t M = a.size(0), N = w.size(0), K = a.size(1);
  check_epilogue_tensor(op, y, "y", {M, N}, a, all);
  check_epilogue_tensor(op, pre, "pre", {M, N}, a, all);
  check_epilogue_tensor(op, bias, "bias", {N}, a, all);
  const EpilogueProblem p{GemmEpilogue::BiasGeluAux, a.dtype(), M, N, K, address_of(bias), address_of(pre), N};
  if (epilogue_allowed(op, p)) {
    const Epilogue epi{op, CUBLASLT_EPILOGUE_GELU_AUX_BIAS, bias.data_ptr(), pre.data_ptr(), N};
    if (run(y, a, w, false, true, 1.0, 0.0, &epi)) return;
    note_epilogue_fallback(op, p.epilogue, "cuBLASLt declined it (no algorithm, or NOT_SUPPORTED) for " + all);
  }
  gemm_bias(pre, a, w, bias);
  kernels::unary(UnaryOp::GeluTanh, y, pre, UnaryArgs{});
}

void gemm_dgelu_bgrad(Tensor& gpre, Tensor& gbias, const Tensor& g, const Tensor& w, const Tensor& pre) {
  const char* op = "gemm_dgelu_bgrad";
  check_operands(op, gpre, g, w);
  const std::string all = shapes_of({{"gpre", &gpre}, {"gbias", &gbias}, {"g", &g}, {"w", &w}, {"pre", &pre}});
  KIRZL_CHECK(g.dim() == 2 && w.dim() == 2 && g.size(1) == w.size(0), op, ": expected g [M, K] and w [K, N], got ",
              all);
  const int64_t M = g.size(0), N = w.size(1), K = g.size(1);
  check_epilogue_tensor(op, gpre, "gpre", {M, N}, g, all);
  check_epilogue_tensor(op, pre, "pre", {M, N}, g, all);
  if (gbias.defined()) check_epilogue_tensor(op, gbias, "gbias", {N}, g, all);
  // Without a bias gradient the DGELU_BGRAD call would still need a vector to write: it is only
  // asked with one.
  const EpilogueProblem p{GemmEpilogue::DGeluBGrad, g.dtype(), M, N, K, address_of(gbias), address_of(pre), N};
  if (gbias.defined() && epilogue_allowed(op, p)) {
    const Epilogue epi{op, CUBLASLT_EPILOGUE_DGELU_BGRAD, gbias.data_ptr(), pre.data_ptr(), N};
    if (run(gpre, g, w, false, false, 1.0, 0.0, &epi)) return;
    note_epilogue_fallback(op, p.epilogue, "cuBLASLt declined it (no algorithm, or NOT_SUPPORTED) for " + all);
  }
  Tensor gy = empty({M, N}, options_of(g));
  run(gy, g, w, false, false, 1.0, 0.0, nullptr);
  Tensor zero_bias = zeros({N}, options_of(g));  // bias_gelu's backward at h = pre + 0 = pre
  kernels::bias_gelu_backward(gpre, gbias, gy, pre, zero_bias, N);
}

void gemm_bgradb(Tensor& gw, Tensor& gbias, const Tensor& g, const Tensor& x) {
  const char* op = "gemm_bgradb";
  check_operands(op, gw, g, x);
  const std::string all = shapes_of({{"gw", &gw}, {"gbias", &gbias}, {"g", &g}, {"x", &x}});
  KIRZL_CHECK(g.dim() == 2 && x.dim() == 2 && g.size(0) == x.size(0), op, ": expected g [M, N] and x [M, K], got ",
              all);
  const int64_t M = g.size(0), N = g.size(1), K = x.size(1);
  check_epilogue_tensor(op, gw, "gw", {N, K}, g, all);
  check_epilogue_tensor(op, gbias, "gbias", {N}, g, all);
  // In run's terms the product is out [N, K] with inner dimension M.
  const EpilogueProblem p{GemmEpilogue::BGradB, g.dtype(), N, K, M, address_of(gbias), 0, 0};
  if (epilogue_allowed(op, p)) {
    const Epilogue epi{op, CUBLASLT_EPILOGUE_BGRADB, gbias.data_ptr(), nullptr, 0};
    if (run(gw, g, x, true, false, 1.0, 0.0, &epi)) return;
    note_epilogue_fallback(op, p.epilogue, "cuBLASLt declined it (no algorithm, or NOT_SUPPORTED) for " + all);
  }
  run(gw, g, x, true, false, 1.0, 0.0, nullptr);
  kernels::copy(gbias, kirzl::sum(g, {0}));
}

void register_gemm_cublaslt_kernels() {
  KIRZL_REGISTER_KERNEL(gemm, DeviceType::CUDA, &gemm);
  KIRZL_REGISTER_KERNEL(gemm_bias, DeviceType::CUDA, &gemm_bias);
  KIRZL_REGISTER_KERNEL(gemm_bias_gelu, DeviceType::CUDA, &gemm_bias_gelu);
  KIRZL_REGISTER_KERNEL(gemm_dgelu_bgrad, DeviceType::CUDA, &gemm_dgelu_bgrad);
  KIRZL_REGISTER_KERNEL(gemm_bgradb, DeviceType::CUDA, &gemm_bgradb);
}

}  // namespace kirzl::kernels::cuda
