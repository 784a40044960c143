// GEMM throughput on CUDA device 0: kirzl (kernels::gemm, and ops::matmul with its output
// allocation) against cuBLASLt called directly in the same program, on the same inputs, with the
// same layout (out[M, N] = x[M, K] w[N, K]^T, as nn::Linear), workspace (32 MiB) and heuristic
// (top-1 answer of cublasLtMatmulAlgoGetHeuristic). The two are timed in alternation with CUDA
// events on the same stream, so clock and thermal drift affect both alike.
//
//   ./build/bench/bench_cuda_gemm
//
// Counters: TFLOPs (kirzl), raw_TFLOPs (cuBLASLt alone) and ratio = kirzl / raw (target >= 0.97).
// Shapes: bf16 4096^3 and 8192^3, the GPT-2 124M training GEMMs at B*T = 16384 tokens
// (qkv 768 -> 2304, attention projection / MLP 3072 -> 768, MLP 768 -> 3072, LM head
// 768 -> 50304), and f32 with TF32 (AllowTF32Guard).
//
// BM_CudaGemmEpilogue: the cuBLASLt epilogues of Note [GEMM epilogues] (src/kernels/gemm_epilogue.h)
// against the unfused sequences they replace, timed in alternation in the same run, at GPT-2 124M's
// MLP (B*T = 16384, 768 -> 3072 -> 768): fwd = gemm_bias_gelu vs a GEMM then bias_gelu_forward;
// dgelu = gemm_dgelu_bgrad vs a GEMM then bias_gelu_backward (GELU gradient and bias gradient);
// bgradb = gemm_bgradb vs a GEMM then a column sum. Counters: fused_us, unfused_us, speedup.
#include <benchmark/benchmark.h>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#if KIRZL_HAS_CUDA
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/cuda/current_stream.h"
#include "kernels/fused_bias_gelu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#endif

namespace {

using namespace kirzl;

struct Problem {
  const char* name;
  int64_t M, K, N;
};

#if KIRZL_HAS_CUDA

// cuBLASLt on its own: its own handle, descriptors and workspace, built once before timing.
class RawLt {
 public:
  RawLt(DType dt, const Problem& p, const void* x, const void* w, void* out, cudaStream_t stream)
      : x_(x), w_(w), out_(out), stream_(stream), f64_(dt == DType::f64) {
    const cudaDataType_t type = dt == DType::bf16  ? CUDA_R_16BF
                                : dt == DType::f16 ? CUDA_R_16F
                                : dt == DType::f64 ? CUDA_R_64F
                                                   : CUDA_R_32F;
    const cublasComputeType_t compute = dt == DType::f64                               ? CUBLAS_COMPUTE_64F
                                        : dt == DType::f32 && kirzl::tf32_allowed() ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                       : CUBLAS_COMPUTE_32F;
    if (!ok(cublasLtCreate(&handle_), "cublasLtCreate")) return;
    if (!ok(cublasLtMatmulDescCreate(&desc_, compute, f64_ ? CUDA_R_64F : CUDA_R_32F), "cublasLtMatmulDescCreate"))
      return;
    // Row-major out = x w^T is column-major out^T = w x^T: w's bytes are w^T [K, N] (op T), x's are
    // x^T [K, M] (op N), out's are out^T [N, M].
    const int32_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t));
    cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n));
    if (!ok(cublasLtMatrixLayoutCreate(&a_, type, p.K, p.N, p.K), "layout a") ||
        !ok(cublasLtMatrixLayoutCreate(&b_, type, p.K, p.M, p.K), "layout b") ||
        !ok(cublasLtMatrixLayoutCreate(&c_, type, p.N, p.M, p.N), "layout c"))
      return;
    cublasLtMatmulPreference_t pref = nullptr;
    if (!ok(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate")) return;
    const uint64_t ws = kWorkspace;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, desc_, a_, b_, c_, c_, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (!ok(st, "cublasLtMatmulAlgoGetHeuristic")) return;
    if (found == 0) {
      error_ = "cuBLASLt heuristic found no algorithm";
      return;
    }
    algo_ = result.algo;
    if (cudaMalloc(&workspace_, kWorkspace) != cudaSuccess) error_ = "cudaMalloc of the workspace failed";
  }
  ~RawLt() {
    if (workspace_) cudaFree(workspace_);
    if (c_) cublasLtMatrixLayoutDestroy(c_);
    if (b_) cublasLtMatrixLayoutDestroy(b_);
    if (a_) cublasLtMatrixLayoutDestroy(a_);
    if (desc_) cublasLtMatmulDescDestroy(desc_);
    if (handle_) cublasLtDestroy(handle_);
  }
  const std::string& error() const { return error_; }
  bool run() {
    const float one = 1.0f, zero = 0.0f;
    const double one_d = 1.0, zero_d = 0.0;
    const void* alpha = f64_ ? static_cast<const void*>(&one_d) : &one;
    const void* beta = f64_ ? static_cast<const void*>(&zero_d) : &zero;
    return ok(cublasLtMatmul(handle_, desc_, alpha, w_, a_, x_, b_, beta, out_, c_, out_, c_, &algo_, workspace_,
                             kWorkspace, stream_),
              "cublasLtMatmul");
  }

 private:
  static constexpr size_t kWorkspace = size_t(32) << 20;  // as kirzl's
  bool ok(cublasStatus_t st, const char* what) {
    if (st == CUBLAS_STATUS_SUCCESS) return true;
    error_ = std::string(what) + " failed: " + cublasGetStatusString(st);
    return false;
  }
  const void* x_;
  const void* w_;
  void* out_;
  cudaStream_t stream_;
  bool f64_;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  void* workspace_ = nullptr;
  std::string error_;
};

void bench_gemm(benchmark::State& state, DType dt, Problem p, bool via_matmul, bool tf32) {
  if (!cuda::is_available()) return state.SkipWithError("no CUDA device");
  std::optional<AllowTF32Guard> guard;
  if (tf32) guard.emplace();
  const Device dev = Device::cuda(0);
  Tensor x = uniform({p.M, p.K}, -1.0, 1.0).to(dt).to(dev);
  Tensor w = uniform({p.N, p.K}, -1.0, 1.0).to(dt).to(dev);
  Tensor out = empty({p.M, p.N}, {.dtype = dt, .device = dev});
  const Tensor wt = w.t();  // a transposed view: matmul reads it in place
  cudaStream_t stream = cuda_rt::current_stream(0);
  RawLt raw(dt, p, x.data_ptr(), w.data_ptr(), out.data_ptr(), stream);
  if (!raw.error().empty()) return state.SkipWithError(raw.error().c_str());
  auto kirzl_call = [&] {
    if (via_matmul) {
      Tensor y = matmul(x, wt);
      benchmark::DoNotOptimize(y.data_ptr());
    } else {
      kernels::gemm(out, x, w, false, true, 1.0, 0.0);
    }
  };
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  // About 20 ms of GEMMs per timed batch at ~700 TFLOP/s (bf16 on an H100).
  const int reps = std::clamp(int(0.02 / (flops / 700e12)), 1, 200);
  for (int i = 0; i < 3; ++i) {  // warm-up: heuristics, workspaces, allocator, clocks
    kirzl_call();
    if (!raw.run()) return state.SkipWithError(raw.error().c_str());
  }
  cudaEvent_t e0, e1, e2;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventCreate(&e2);
  double kirzl_s = 0, raw_s = 0;
  int64_t calls = 0;
  for (auto _ : state) {
    cudaEventRecord(e0, stream);
    for (int r = 0; r < reps; ++r) kirzl_call();
    cudaEventRecord(e1, stream);
    for (int r = 0; r < reps; ++r) raw.run();
    cudaEventRecord(e2, stream);
    cudaEventSynchronize(e2);
    float tk = 0, tr = 0;
    cudaEventElapsedTime(&tk, e0, e1);
    cudaEventElapsedTime(&tr, e1, e2);
    state.SetIterationTime(tk / 1e3 / reps);  // per GEMM
    kirzl_s += tk / 1e3;
    raw_s += tr / 1e3;
    calls += reps;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaEventDestroy(e2);
  if (cudaGetLastError() != cudaSuccess) return state.SkipWithError("a CUDA call failed during the benchmark");
  state.counters["TFLOPs"] = flops * double(calls) / kirzl_s / 1e12;
  state.counters["raw_TFLOPs"] = flops * double(calls) / raw_s / 1e12;
  state.counters["ratio"] = raw_s / kirzl_s;
  state.SetLabel(std::string(dtype_name(dt)) + (tf32 ? " (TF32)" : "") + (via_matmul ? " ops::matmul" : " kernels::gemm"));
}

// The fused call against the unfused sequence, alternately on one stream, each timed by events.
void time_pair(benchmark::State& state, const std::function<void()>& fused, const std::function<void()>& unfused,
               int reps) {
  cudaStream_t stream = cuda_rt::current_stream(0);
  for (int i = 0; i < 3; ++i) fused(), unfused();  // warm-up: heuristics, workspaces, allocator
  cudaEvent_t e0, e1, e2;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventCreate(&e2);
  double fused_s = 0, unfused_s = 0;
  int64_t calls = 0;
  for (auto _ : state) {
    cudaEventRecord(e0, stream);
    for (int r = 0; r < reps; ++r) fused();
    cudaEventRecord(e1, stream);
    for (int r = 0; r < reps; ++r) unfused();
    cudaEventRecord(e2, stream);
    cudaEventSynchronize(e2);
    float tf = 0, tu = 0;
    cudaEventElapsedTime(&tf, e0, e1);
    cudaEventElapsedTime(&tu, e1, e2);
    state.SetIterationTime(tf / 1e3 / reps);
    fused_s += tf / 1e3;
    unfused_s += tu / 1e3;
    calls += reps;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaEventDestroy(e2);
  if (cudaGetLastError() != cudaSuccess) return state.SkipWithError("a CUDA call failed during the benchmark");
  state.counters["fused_us"] = fused_s / double(calls) * 1e6;
  state.counters["unfused_us"] = unfused_s / double(calls) * 1e6;
  state.counters["speedup"] = unfused_s / fused_s;
}

// M rows, the layer K -> N (c_fc: 768 -> 3072); the GELU's output gradient comes from a product
// with c_proj [K, N].
void bench_epilogue(benchmark::State& state, DType dt, kernels::GemmEpilogue which, int64_t M, int64_t K, int64_t N) {
  if (!cuda::is_available()) return state.SkipWithError("no CUDA device");
  const Device dev = Device::cuda(0);
  const TensorOptions o{.dtype = dt, .device = dev};
  Tensor x = uniform({M, K}, -1.0, 1.0).to(dt).to(dev), w = uniform({N, K}, -0.1, 0.1).to(dt).to(dev);
  Tensor b = uniform({N}, -1.0, 1.0).to(dt).to(dev), zero_b = zeros({N}, o);
  Tensor y = empty({M, N}, o), pre = empty({M, N}, o), tmp = empty({M, N}, o);
  kernels::gemm_bias_gelu(y, pre, x, w, b);
  Tensor g = uniform({M, K}, -1.0, 1.0).to(dt).to(dev), w2 = uniform({K, N}, -0.1, 0.1).to(dt).to(dev);
  Tensor gpre = empty({M, N}, o), gb = empty({N}, o);
  Tensor gy = uniform({M, N}, -1.0, 1.0).to(dt).to(dev), gw = empty({N, K}, o);
  std::function<void()> fused, unfused;
  switch (which) {
    case kernels::GemmEpilogue::BiasGeluAux:
      fused = [&] { kernels::gemm_bias_gelu(y, pre, x, w, b); };
      unfused = [&] {  // today's fused GPT path: linear without bias, then bias_gelu
        kernels::gemm(tmp, x, w, false, true, 1.0, 0.0);
        kernels::bias_gelu_forward(y, tmp, b, N);
      };
      break;
    case kernels::GemmEpilogue::DGeluBGrad:
      fused = [&] { kernels::gemm_dgelu_bgrad(gpre, gb, g, w2, pre); };
      unfused = [&] {
        kernels::gemm(tmp, g, w2, false, false, 1.0, 0.0);
        kernels::bias_gelu_backward(gpre, gb, tmp, pre, zero_b, N);
      };
      break;
    case kernels::GemmEpilogue::BGradB:
      fused = [&] { kernels::gemm_bgradb(gw, gb, gy, x); };
      unfused = [&] {
        kernels::gemm(gw, gy, x, true, false, 1.0, 0.0);
        Tensor s = sum(gy, {0});
        benchmark::DoNotOptimize(s.data_ptr());
      };
      break;
  }
  const double flops = 2.0 * double(M) * double(N) * double(K);
  time_pair(state, fused, unfused, std::clamp(int(0.02 / (flops / 700e12)), 1, 200));
  const size_t fallbacks = kernels::epilogue_fallbacks().size();
  state.SetLabel(std::string(dtype_name(dt)) + " " + kernels::epilogue_name(which) +
                 (fallbacks ? " (a fallback was recorded: see stderr)" : ""));
}

#else

void bench_gemm(benchmark::State& state, DType, Problem, bool, bool) {
  state.SkipWithError("no CUDA device (kirzl was built without CUDA)");
}

#endif

const bool registered = [] {
  const Problem bf16_problems[] = {
      {"4096x4096x4096", 4096, 4096, 4096},     {"8192x8192x8192", 8192, 8192, 8192},
      {"gpt2_qkv_16384x768x2304", 16384, 768, 2304}, {"gpt2_proj_16384x3072x768", 16384, 3072, 768},
      {"gpt2_fc_16384x768x3072", 16384, 768, 3072},  {"gpt2_lm_head_16384x768x50304", 16384, 768, 50304},
  };
  const Problem tf32_problems[] = {
      {"4096x4096x4096", 4096, 4096, 4096},
      {"8192x8192x8192", 8192, 8192, 8192},
      {"gpt2_fc_16384x768x3072", 16384, 768, 3072},
  };
  auto add = [](const std::string& name, DType dt, Problem p, bool via_matmul, bool tf32) {
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bench_gemm(st, dt, p, via_matmul, tf32); })
        ->UseManualTime()
        ->Iterations(10)
        ->Unit(benchmark::kMicrosecond);
  };
  for (const Problem& p : bf16_problems)
    for (bool via_matmul : {false, true})
      add(std::string("BM_CudaGemm/bf16/") + (via_matmul ? "matmul/" : "gemm/") + p.name, DType::bf16, p, via_matmul,
          false);
  for (const Problem& p : tf32_problems)
    for (bool via_matmul : {false, true})
      add(std::string("BM_CudaGemm/f32_tf32/") + (via_matmul ? "matmul/" : "gemm/") + p.name, DType::f32, p,
          via_matmul, true);
#if KIRZL_HAS_CUDA
  for (DType dt : {DType::bf16, DType::f32})
    for (auto [which, name] : {std::pair{kernels::GemmEpilogue::BiasGeluAux, "fwd"},
                               std::pair{kernels::GemmEpilogue::DGeluBGrad, "dgelu"},
                               std::pair{kernels::GemmEpilogue::BGradB, "bgradb"}}) {
      const std::string bench = std::string("BM_CudaGemmEpilogue/") + dtype_name(dt) + "/" + name +
                                "/gpt2_fc_16384x768x3072";
      benchmark::RegisterBenchmark(bench.c_str(), [=](benchmark::State& st) {
        bench_epilogue(st, dt, which, 16384, 768, 3072);
      })->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
    }
#endif
  return true;
}();

}  // namespace
