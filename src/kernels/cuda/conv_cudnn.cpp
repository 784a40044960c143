// conv2d on CUDA through cuDNN's convolution API (NCHW): forward, backward data, backward filter.
//
// Note [cuDNN convolution plans]
// Everything cuDNN needs for one geometry and dtype — the tensor, filter and convolution
// descriptors and, per direction, the algorithm, its math type and its workspace size — is built
// once and cached as an immutable plan; a call then only binds the handle to the current stream
// and runs. Algorithms come from cuDNN's heuristics (cudnnGet*Algorithm_v7, which runs no
// kernels), taking the best-ranked one that is deterministic (kirzl's default: the same inputs
// give the same bits) and, for f32 without an AllowTF32Guard, not a tensor-op one; the
// descriptor is then pinned to CUDNN_FMA_MATH, since CUDNN_DEFAULT_MATH permits TF32 on Ampere
// and later.
// Each direction has its own convolution descriptor because the math type is set per algorithm.
// The legacy descriptor API is deprecated in cuDNN 9 but still complete for 2-D NCHW
// convolutions; its deprecation warnings are silenced in this file only.
#include <cudnn.h>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <mutex>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "kernels/conv.h"
#include "kernels/cuda/channel_bias.h"
#include "kernels/cuda/cudnn_check.h"
#include "kernels/cuda/cudnn_handle.h"
#include "kernels/cuda/library_context.h"
#include "kirzl/ops/linalg.hpp"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace kirzl::kernels::cuda {

namespace {

cudnnDataType_t cudnn_type_of(DType dt) {
  switch (dt) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default:
      KIRZL_FAIL(ErrorCode::InvalidArgument, "conv2d: expected a floating dtype (f32, f64, bf16, f16), got ",
                 dtype_name(dt));
  }
}

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op (conversion)";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "?";
}

std::string describe(const Conv2dGeometry& g, DType dt) {
  return detail::str_cat("x [", g.N, ", ", g.C, ", ", g.H, ", ", g.W, "], weight [", g.Cout, ", ", g.C / g.groups,
                         ", ", g.kh, ", ", g.kw, "], stride [", g.sh, ", ", g.sw, "], padding [", g.ph, ", ", g.pw,
                         "], dilation [", g.dh, ", ", g.dw, "], groups ", g.groups, ", ", dtype_name(dt));
}

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  std::array<cudnnConvolutionDescriptor_t, 3> conv{};  // forward, backward data, backward filter
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  std::array<size_t, 3> workspace{};
  bool f64 = false;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    for (auto c : conv)
      if (c) (void)cudnnDestroyConvolutionDescriptor(c);
    if (w) (void)cudnnDestroyFilterDescriptor(w);
    if (y) (void)cudnnDestroyTensorDescriptor(y);
    if (x) (void)cudnnDestroyTensorDescriptor(x);
  }
};

// The best-ranked usable algorithm of a heuristic answer (see Note [cuDNN convolution plans]).
template <typename Perf>
const Perf& pick(const Perf* perfs, int n, bool fma_only, const char* direction, const Conv2dGeometry& g, DType dt) {
  for (int i = 0; i < n; ++i) {
    const Perf& p = perfs[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (fma_only && (p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    return p;
  }
  std::string seen;
  for (int i = 0; i < n; ++i)
    seen += detail::str_cat(i ? ", " : "", "algo ", int(perfs[i].algo), " (", cudnnGetErrorString(perfs[i].status),
                            perfs[i].determinism == CUDNN_DETERMINISTIC ? ", deterministic, " : ", non-deterministic, ",
                            math_name(perfs[i].mathType), " math)");
  KIRZL_FAIL(ErrorCode::Unsupported, "conv2d ", direction, ": cuDNN offers no deterministic algorithm",
             fma_only ? " with exact f32 (FMA) math" : "", " for ", describe(g, dt), "; candidates: ",
             seen.empty() ? "none" : seen);
}

std::unique_ptr<Plan> make_plan(cudnnHandle_t h, const Conv2dGeometry& g, DType dt, bool tf32) {
  auto as_int = [&](int64_t v) {
    KIRZL_CHECK_CODE(v <= INT_MAX, ErrorCode::Unsupported, "conv2d: ", describe(g, dt),
                     " exceeds cuDNN's 32-bit sizes");
    return static_cast<int>(v);
  };
  KIRZL_CHECK_CODE(g.N * g.C * g.H * g.W <= INT_MAX && g.N * g.Cout * g.Ho * g.Wo <= INT_MAX, ErrorCode::Unsupported,
                   "conv2d: ", describe(g, dt), " has more than 2^31 elements per tensor, beyond cuDNN's legacy API");
  const cudnnDataType_t type = cudnn_type_of(dt);
  const cudnnDataType_t compute = dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  // f32: FMA unless TF32 is allowed (CUDNN_DEFAULT_MATH permits TF32 on Ampere and later);
  // 16-bit types: tensor cores; f64: default.
  const bool fma_only = dt == DType::f32 && !tf32;
  const cudnnMathType_t math = fma_only                                  ? CUDNN_FMA_MATH
                               : (dt == DType::bf16 || dt == DType::f16) ? CUDNN_TENSOR_OP_MATH
                                                                         : CUDNN_DEFAULT_MATH;
  auto p = std::make_unique<Plan>();
  p->f64 = dt == DType::f64;
  KIRZL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  KIRZL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  KIRZL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  KIRZL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, type, as_int(g.N), as_int(g.C), as_int(g.H),
                                               as_int(g.W)));
  KIRZL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, type, as_int(g.N), as_int(g.Cout),
                                               as_int(g.Ho), as_int(g.Wo)));
  KIRZL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, type, CUDNN_TENSOR_NCHW, as_int(g.Cout), as_int(g.C / g.groups),
                                               as_int(g.kh), as_int(g.kw)));
  for (auto& c : p->conv) {
    KIRZL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&c));
    KIRZL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c, as_int(g.ph), as_int(g.pw), as_int(g.sh), as_int(g.sw),
                                                      as_int(g.dh), as_int(g.dw), CUDNN_CROSS_CORRELATION, compute));
    KIRZL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(c, as_int(g.groups)));
    KIRZL_CUDNN_CHECK(cudnnSetConvolutionMathType(c, math));
  }
  {
    std::array<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT> perfs{};
    int n = 0;
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv[0], p->y, int(perfs.size()), &n,
                                                             perfs.data()));
    const auto& best = pick(perfs.data(), n, fma_only, "forward", g, dt);
    p->fwd = best.algo;
    KIRZL_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv[0], fma_only ? CUDNN_FMA_MATH : best.mathType));
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv[0], p->y, p->fwd, &p->workspace[0]));
  }
  {
    std::array<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT> perfs{};
    int n = 0;
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv[1], p->x, int(perfs.size()),
                                                                  &n, perfs.data()));
    const auto& best = pick(perfs.data(), n, fma_only, "backward (input)", g, dt);
    p->bwd_data = best.algo;
    KIRZL_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv[1], fma_only ? CUDNN_FMA_MATH : best.mathType));
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv[1], p->x, p->bwd_data,
                                                                   &p->workspace[1]));
  }
  {
    std::array<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT> perfs{};
    int n = 0;
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv[2], p->w, int(perfs.size()),
                                                                    &n, perfs.data()));
    const auto& best = pick(perfs.data(), n, fma_only, "backward (weight)", g, dt);
    p->bwd_filter = best.algo;
    KIRZL_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv[2], fma_only ? CUDNN_FMA_MATH : best.mathType));
    KIRZL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv[2], p->w, p->bwd_filter,
                                                                     &p->workspace[2]));
  }
  return p;
}

// Everything a call needs: the plan (cached), the handle bound to the current stream, scalars
// of the compute type and the workspace.
struct Call {
  const Plan* plan;
  cudnnHandle_t handle;
  cudaStream_t stream;
  int device;
  float one_f = 1.0f, zero_f = 0.0f;
  double one_d = 1.0, zero_d = 0.0;
  const void* one() const { return plan->f64 ? static_cast<const void*>(&one_d) : &one_f; }
  const void* zero() const { return plan->f64 ? static_cast<const void*>(&zero_d) : &zero_f; }
};

Call prepare_call(const Tensor& t, const Conv2dGeometry& g) {
  const DType dt = t.dtype();
  const int device = t.device().index();
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = cuda_rt::current_stream(device);
  cudnnHandle_t h = cudnn_handle(device);
  KIRZL_CUDNN_CHECK(cudnnSetStream(h, stream));
  const bool tf32 = dt == DType::f32 && tf32_allowed();
  using Key = std::array<int64_t, 19>;
  const Key key{device, int64_t(dt), tf32, g.N, g.C, g.H, g.W, g.Cout, g.kh, g.kw,
                g.sh,   g.sw,        g.ph, g.pw, g.dh, g.dw, g.groups, g.Ho, g.Wo};
  // Never destroyed: plans are used until the process ends (see library_context.h on why).
  static std::mutex* mu = new std::mutex;
  static auto* plans = new std::map<Key, std::unique_ptr<Plan>>;
  std::lock_guard lock(*mu);  // held while a plan is built: heuristics run once per geometry
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, make_plan(h, g, dt, tf32)).first;
  return Call{it->second.get(), h, stream, device};
}

void check(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts, const Tensor& first) {
  for (auto& [name, t] : ts) {
    KIRZL_CHECK(t->device() == first.device() && t->dtype() == first.dtype() && t->is_contiguous(), op, ": ", name, " ",
                t->describe(), " must be contiguous, on ", first.device().str(), " and ", dtype_name(first.dtype()));
  }
}

void* ws_ptr(const Tensor& ws) { return ws.defined() ? ws.data_ptr() : nullptr; }

// A backward that writes `grad`: nothing to do for an empty grad, zeros for an empty grad_out (no
// cuDNN call takes empty tensors); otherwise `run(call, plan, workspace)` with the workspace of
// the plan's `slot` (1: data, 2: filter).
template <typename Run>
void run_backward(Tensor& grad, const Tensor& grad_out, const Conv2dGeometry& g, int slot, Run run) {
  if (grad.numel() == 0) return;
  if (grad_out.numel() == 0) {
    grad.zero_();
    return;
  }
  Call c = prepare_call(grad_out, g);
  Tensor ws = stream_workspace(c.device, c.stream, c.plan->workspace[slot]);
  run(c, *c.plan, ws_ptr(ws));
}

}  // namespace

void conv2d_forward(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g) {
  check("conv2d", {{"x", &x}, {"weight", &weight}, {"out", &out}}, x);
  if (out.numel() == 0) return;
  Call c = prepare_call(x, g);
  const Plan& p = *c.plan;
  Tensor ws = stream_workspace(c.device, c.stream, p.workspace[0]);
  KIRZL_CUDNN_CHECK(cudnnConvolutionForward(c.handle, c.one(), p.x, x.data_ptr(), p.w, weight.data_ptr(), p.conv[0],
                                            p.fwd, ws_ptr(ws), p.workspace[0], c.zero(), p.y, out.data_ptr()));
  if (bias.defined()) {
    check("conv2d", {{"bias", &bias}}, x);
    add_channel_bias(out, bias);
  }
}

void conv2d_backward_input(Tensor& grad_x, const Tensor& grad_out, const Tensor& weight, const Conv2dGeometry& g) {
  check("conv2d backward (input)", {{"grad_out", &grad_out}, {"weight", &weight}, {"grad_x", &grad_x}}, grad_out);
  run_backward(grad_x, grad_out, g, 1, [&](const Call& c, const Plan& p, void* ws) {
    KIRZL_CUDNN_CHECK(cudnnConvolutionBackwardData(c.handle, c.one(), p.w, weight.data_ptr(), p.y, grad_out.data_ptr(),
                                                   p.conv[1], p.bwd_data, ws, p.workspace[1], c.zero(), p.x,
                                                   grad_x.data_ptr()));
  });
}

void conv2d_backward_weight(Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dGeometry& g) {
  check("conv2d backward (weight)", {{"grad_out", &grad_out}, {"x", &x}, {"grad_w", &grad_w}}, grad_out);
  run_backward(grad_w, grad_out, g, 2, [&](const Call& c, const Plan& p, void* ws) {
    KIRZL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.handle, c.one(), p.x, x.data_ptr(), p.y, grad_out.data_ptr(),
                                                     p.conv[2], p.bwd_filter, ws, p.workspace[2], c.zero(), p.w,
                                                     grad_w.data_ptr()));
  });
}

void register_conv_cudnn_kernels() {
  KIRZL_REGISTER_KERNEL(conv2d_forward, DeviceType::CUDA, &conv2d_forward);
  KIRZL_REGISTER_KERNEL(conv2d_backward_input, DeviceType::CUDA, &conv2d_backward_input);
  KIRZL_REGISTER_KERNEL(conv2d_backward_weight, DeviceType::CUDA, &conv2d_backward_weight);
}

}  // namespace kirzl::kernels::cuda
