// Fused multi-tensor optimizer steps: SGD, Adam/AdamW, LAMB (Note [multi-tensor apply]).
// Each kernel repeats the CPU loop of its optimizer (src/optim/*.cpp) expression by expression,
// in the same types (f32 math for f32/bf16/f16 parameters, f64 for f64), so that the two agree
// to rounding; 16-bit parameters are updated through their f32 master (Note [master weights]).
#include <algorithm>
#include <map>
#include <tuple>

#include "kernels/cuda/multi_tensor_apply.cuh"
#include "kernels/dispatch.h"
#include "kernels/optim_update.h"

namespace kirzl::kernels::cuda {

namespace mt {
std::atomic<int64_t>& launch_counter() {
  static std::atomic<int64_t> count{0};
  return count;
}
}  // namespace mt

int64_t multi_tensor_launch_count() { return mt::launch_counter().load(std::memory_order_relaxed); }

namespace {

using mt::kIlp;

/// Math type of a parameter type: double for f64, float otherwise.
template <typename T> struct MathOf { using type = float; };
template <> struct MathOf<double> { using type = double; };
template <typename T> using math_t = typename MathOf<T>::type;

/// Where chunk `blockIdx.x` of a Meta lies: its tensor, first element and element count.
struct ChunkPos {
  int t;
  int64_t start, n;
};
template <typename Meta>
__device__ __forceinline__ ChunkPos chunk_pos(const Meta& meta) {
  ChunkPos c;
  c.t = meta.block_tensor[blockIdx.x];
  c.start = static_cast<int64_t>(meta.block_chunk[blockIdx.x]) * mt::kChunk;
  const int64_t rest = meta.sizes[c.t] - c.start;
  c.n = rest < mt::kChunk ? rest : mt::kChunk;
  return c;
}

template <typename P, typename Meta>
__device__ __forceinline__ P* list_ptr(const Meta& meta, int d, const ChunkPos& c) {
  void* p = meta.ptrs[d][c.t];
  return p ? static_cast<P*>(p) + c.start : nullptr;
}

// ---------------------------------------------------------------------------------------------
// SGD. Lists: 0 param, 1 grad, 2 master, 3 momentum buffer. Scalar 0: buffer just created.

template <typename M>
struct SgdParams {
  M lr, wd, momentum, damp;
  bool nesterov, maximize;
};

template <typename T, typename G>
__global__ void __launch_bounds__(mt::kThreads)
    sgd_kernel(const __grid_constant__ mt::Meta<4, 1> meta, SgdParams<math_t<T>> a) {
  using M = math_t<T>;
  const ChunkPos c = chunk_pos(meta);
  T* p = list_ptr<T>(meta, 0, c);
  const G* g = list_ptr<const G>(meta, 1, c);
  float* w32 = list_ptr<float>(meta, 2, c);
  M* buf = list_ptr<M>(meta, 3, c);
  const bool first = meta.scalars[0][c.t] != 0.0;
  const bool vec = mt::aligned<T>(p) && mt::aligned<G>(g) && mt::aligned<float>(w32) && mt::aligned<M>(buf);
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < c.n; i += int64_t{blockDim.x} * kIlp) {
    const bool v = vec && i + kIlp <= c.n;
    M w[kIlp], d[kIlp], b[kIlp];
    if (w32) mt::load(w, w32, i, c.n, v);
    else mt::load(w, p, i, c.n, v);
    mt::load(d, g, i, c.n, v);
    if (buf) mt::load(b, buf, i, c.n, v);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      if (a.maximize) d[k] = -d[k];
      if (a.wd != 0) d[k] += a.wd * w[k];
      if (buf) {
        b[k] = first ? d[k] : a.momentum * b[k] + a.damp * d[k];
        d[k] = a.nesterov ? d[k] + a.momentum * b[k] : b[k];
      }
      w[k] = w[k] - a.lr * d[k];
    }
    if (buf) mt::store(buf, b, i, c.n, v);
    if (w32) mt::store(w32, w, i, c.n, v);
    mt::store(p, w, i, c.n, v);
  }
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW. Lists: 0 param, 1 grad, 2 master, 3 exp_avg, 4 exp_avg_sq, 5 max_exp_avg_sq.
// Scalars: 0 step size lr / (1 - β1^t), 1 1 / sqrt(1 - β2^t). Capturable (Note [capturable adam]):
// scalar 0 is the tensor's slot in `steps` instead, and the kernel computes both scalars and the
// decay from steps[slot] and *lr in f64, as the host does.

template <typename M>
struct AdamParams {
  M b1, b2, eps, decay, l2;
  bool maximize;
  const double* lr = nullptr;  // capturable only
  const double* steps = nullptr;
  double beta1 = 0, beta2 = 0, decoupled_decay = 0;  // f64 for the bias corrections; λ of AdamW
};

// Capturable Adam: adds 1 to the step counts of the parameters this update touches (one thread
// each; a parameter appears once per update).
constexpr int kMaxStepSlots = 256;
struct StepSlots {
  int64_t slot[kMaxStepSlots];
  int n;
};
__global__ void advance_steps_kernel(double* steps, const StepSlots s) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < s.n) steps[s.slot[i]] += 1.0;
}

template <typename T, typename G>
__global__ void __launch_bounds__(mt::kThreads)
    adam_kernel(const __grid_constant__ mt::Meta<6, 2> meta, AdamParams<math_t<T>> a) {
  using M = math_t<T>;
  const ChunkPos c = chunk_pos(meta);
  T* p = list_ptr<T>(meta, 0, c);
  const G* g = list_ptr<const G>(meta, 1, c);
  float* w32 = list_ptr<float>(meta, 2, c);
  M* m_ = list_ptr<M>(meta, 3, c);
  M* v_ = list_ptr<M>(meta, 4, c);
  M* vmax_ = list_ptr<M>(meta, 5, c);
  M step_size, inv_bc2_sqrt, decay = a.decay;
  if (a.lr != nullptr) {
    const double lr = *a.lr;
    const double t = a.steps[static_cast<int64_t>(meta.scalars[0][c.t])];
    step_size = static_cast<M>(lr / (1.0 - pow(a.beta1, t)));
    inv_bc2_sqrt = static_cast<M>(1.0 / sqrt(1.0 - pow(a.beta2, t)));
    if (a.decoupled_decay != 0) decay = static_cast<M>(1.0 - lr * a.decoupled_decay);
  } else {
    step_size = static_cast<M>(meta.scalars[0][c.t]);
    inv_bc2_sqrt = static_cast<M>(meta.scalars[1][c.t]);
  }
  const bool vec = mt::aligned<T>(p) && mt::aligned<G>(g) && mt::aligned<float>(w32) && mt::aligned<M>(m_) &&
                   mt::aligned<M>(v_) && mt::aligned<M>(vmax_);
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < c.n; i += int64_t{blockDim.x} * kIlp) {
    const bool vv = vec && i + kIlp <= c.n;
    M w[kIlp], d[kIlp], m[kIlp], v[kIlp], vmax[kIlp];
    if (w32) mt::load(w, w32, i, c.n, vv);
    else mt::load(w, p, i, c.n, vv);
    mt::load(d, g, i, c.n, vv);
    mt::load(m, m_, i, c.n, vv);
    mt::load(v, v_, i, c.n, vv);
    if (vmax_) mt::load(vmax, vmax_, i, c.n, vv);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      if (a.maximize) d[k] = -d[k];
      if (a.l2 != 0) d[k] += a.l2 * w[k];
      w[k] *= decay;
      m[k] = a.b1 * m[k] + (1 - a.b1) * d[k];
      v[k] = a.b2 * v[k] + (1 - a.b2) * d[k] * d[k];
      M vi = v[k];
      if (vmax_) {
        vmax[k] = vmax[k] > vi ? vmax[k] : vi;
        vi = vmax[k];
      }
      w[k] = w[k] - step_size * m[k] / (sqrt(vi) * inv_bc2_sqrt + a.eps);
    }
    mt::store(m_, m, i, c.n, vv);
    mt::store(v_, v, i, c.n, vv);
    if (vmax_) mt::store(vmax_, vmax, i, c.n, vv);
    if (w32) mt::store(w32, w, i, c.n, vv);
    mt::store(p, w, i, c.n, vv);
  }
}

// ---------------------------------------------------------------------------------------------
// LAMB. Lists: 0 param, 1 grad, 2 master, 3 exp_avg, 4 exp_avg_sq. Scalars: 0 1 / (1 - β1^t),
// 1 1 / sqrt(1 - β2^t). Pass 1 updates the moments and writes per-chunk partial sums of w² and
// r² (f64) to partials[2 * (chunk_base + first_chunk + chunk)]; pass 2 sums the partials of its
// tensor in a fixed order (each block of the tensor the same way), forms the trust ratio and
// updates the weights.

template <typename M>
struct LambParams {
  M b1, b2, eps, wd;
  double lr;
};

template <typename M>
__device__ __forceinline__ M lamb_r(M m, M v, M w, M inv_bc1, M inv_bc2_sqrt, const LambParams<M>& a) {
  return m * inv_bc1 / (sqrt(v) * inv_bc2_sqrt + a.eps) + a.wd * w;
}

struct Add {
  template <typename R> __device__ R operator()(R a, R b) const { return a + b; }
};

template <typename T, typename G>
__global__ void __launch_bounds__(mt::kThreads)
    lamb_moments_kernel(const __grid_constant__ mt::Meta<5, 2> meta, LambParams<math_t<T>> a, double* partials,
                        int64_t chunk_base) {
  using M = math_t<T>;
  __shared__ double scratch[mt::kThreads / 32];
  const ChunkPos c = chunk_pos(meta);
  T* p = list_ptr<T>(meta, 0, c);
  const G* g = list_ptr<const G>(meta, 1, c);
  float* w32 = list_ptr<float>(meta, 2, c);
  M* m_ = list_ptr<M>(meta, 3, c);
  M* v_ = list_ptr<M>(meta, 4, c);
  const M inv_bc1 = static_cast<M>(meta.scalars[0][c.t]);
  const M inv_bc2_sqrt = static_cast<M>(meta.scalars[1][c.t]);
  const bool vec =
      mt::aligned<T>(p) && mt::aligned<G>(g) && mt::aligned<float>(w32) && mt::aligned<M>(m_) && mt::aligned<M>(v_);
  double sw = 0.0, sr = 0.0;
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < c.n; i += int64_t{blockDim.x} * kIlp) {
    const bool vv = vec && i + kIlp <= c.n;
    M w[kIlp], d[kIlp], m[kIlp], v[kIlp];
    if (w32) mt::load(w, w32, i, c.n, vv);
    else mt::load(w, p, i, c.n, vv);
    mt::load(d, g, i, c.n, vv);
    mt::load(m, m_, i, c.n, vv);
    mt::load(v, v_, i, c.n, vv);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      m[k] = a.b1 * m[k] + (1 - a.b1) * d[k];
      v[k] = a.b2 * v[k] + (1 - a.b2) * d[k] * d[k];
      if (i + k < c.n) {  // the zero padding past n must not count (eps keeps r finite, wd w = 0)
        const double r = static_cast<double>(lamb_r(m[k], v[k], w[k], inv_bc1, inv_bc2_sqrt, a));
        sw += static_cast<double>(w[k]) * static_cast<double>(w[k]);
        sr += r * r;
      }
    }
    mt::store(m_, m, i, c.n, vv);
    mt::store(v_, v, i, c.n, vv);
  }
  sw = mt::block_reduce(sw, scratch, Add{});
  sr = mt::block_reduce(sr, scratch, Add{});
  if (threadIdx.x == 0) {
    const int64_t idx = chunk_base + meta.first_chunk[c.t] + meta.block_chunk[blockIdx.x];
    partials[2 * idx] = sw;
    partials[2 * idx + 1] = sr;
  }
}

// Pass 2's update of one chunk, with the trust ratio already known: θ -= lr · trust · r.
template <typename T, typename Meta>
__device__ __forceinline__ void lamb_update_chunk(const Meta& meta, const ChunkPos& c, const LambParams<math_t<T>>& a,
                                                  double trust) {
  using M = math_t<T>;
  const M step_size = static_cast<M>(a.lr * trust);
  T* p = list_ptr<T>(meta, 0, c);
  float* w32 = list_ptr<float>(meta, 2, c);
  M* m_ = list_ptr<M>(meta, 3, c);
  M* v_ = list_ptr<M>(meta, 4, c);
  const M inv_bc1 = static_cast<M>(meta.scalars[0][c.t]);
  const M inv_bc2_sqrt = static_cast<M>(meta.scalars[1][c.t]);
  const bool vec = mt::aligned<T>(p) && mt::aligned<float>(w32) && mt::aligned<M>(m_) && mt::aligned<M>(v_);
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < c.n; i += int64_t{blockDim.x} * kIlp) {
    const bool vv = vec && i + kIlp <= c.n;
    M w[kIlp], m[kIlp], v[kIlp];
    if (w32) mt::load(w, w32, i, c.n, vv);
    else mt::load(w, p, i, c.n, vv);
    mt::load(m, m_, i, c.n, vv);
    mt::load(v, v_, i, c.n, vv);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) w[k] = w[k] - step_size * lamb_r(m[k], v[k], w[k], inv_bc1, inv_bc2_sqrt, a);
    if (w32) mt::store(w32, w, i, c.n, vv);
    mt::store(p, w, i, c.n, vv);
  }
}

template <typename T>
__global__ void __launch_bounds__(mt::kThreads)
    lamb_update_kernel(const __grid_constant__ mt::Meta<5, 2> meta, LambParams<math_t<T>> a, const double* partials,
                       int64_t chunk_base) {
  using M = math_t<T>;
  __shared__ double scratch[mt::kThreads / 32];
  const ChunkPos c = chunk_pos(meta);
  // The trust ratio of this tensor: every block of the tensor sums the same partials in the
  // same order, so they all get the same value.
  const int64_t first = chunk_base + meta.first_chunk[c.t];
  const int64_t chunks = (meta.sizes[c.t] + mt::kChunk - 1) / mt::kChunk;
  double sw = 0.0, sr = 0.0;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    sw += partials[2 * (first + k)];
    sr += partials[2 * (first + k) + 1];
  }
  sw = mt::block_reduce(sw, scratch, Add{});
  sr = mt::block_reduce(sr, scratch, Add{});
  const double w_norm = sqrt(sw), r_norm = sqrt(sr);
  const double trust = (w_norm > 0.0 && r_norm > 0.0) ? w_norm / r_norm : 1.0;
  lamb_update_chunk<T>(meta, c, a, trust);
}

// The second half of LAMB over pieces of whole tensors (Note [sharded optimizer]): the trust
// ratio of each piece's whole tensor comes from the host as scalar 2.
template <typename T>
__global__ void __launch_bounds__(mt::kThreads)
    lamb_apply_kernel(const __grid_constant__ mt::Meta<5, 3> meta, LambParams<math_t<T>> a) {
  const ChunkPos c = chunk_pos(meta);
  lamb_update_chunk<T>(meta, c, a, meta.scalars[2][c.t]);
}

// ---------------------------------------------------------------------------------------------
// Host side.

/// Checks the lists and returns the indices of the parameters in each (param dtype, grad dtype)
/// class, in list order.
std::map<std::pair<DType, DType>, std::vector<size_t>> classes_of(const char* who, const OptimLists& l,
                                                                  int n_state) {
  const size_t n = l.params.size();
  KIRZL_CHECK(l.grads.size() == n, who, ": ", n, " parameters but ", l.grads.size(), " gradients");
  KIRZL_CHECK(l.masters.empty() || l.masters.size() == n, who, ": ", n, " parameters but ", l.masters.size(),
              " master weights");
  for (int s = 0; s < n_state; ++s)
    KIRZL_CHECK(l.state[s].empty() || l.state[s].size() == n, who, ": ", n, " parameters but ", l.state[s].size(),
                " tensors in state list ", s);
  std::map<std::pair<DType, DType>, std::vector<size_t>> classes;
  for (size_t k = 0; k < n; ++k) {
    const Tensor& p = l.params[k];
    const Tensor& g = l.grads[k];
    KIRZL_CHECK(p.device().is_cuda() && g.device() == p.device() && p.is_contiguous() && g.is_contiguous() &&
                    g.numel() == p.numel(),
                who, ": parameter ", k, " ", p.describe(), " and gradient ", g.describe(),
                " must be contiguous, of the same size and on one CUDA device");
    const bool half = p.dtype() == DType::bf16 || p.dtype() == DType::f16;
    KIRZL_CHECK(g.dtype() == p.dtype() || (half && g.dtype() == DType::f32), who, ": gradient ", g.describe(),
                " of parameter ", k, " ", p.describe(), " must have the parameter's dtype (or f32 for a 16-bit one)");
    const Tensor* master = l.masters.empty() ? nullptr : &l.masters[k];
    KIRZL_CHECK(half == (master && master->defined()), who, ": parameter ", k, " ", p.describe(),
                half ? " is 16-bit and needs an f32 master" : " is not 16-bit and must have no master");
    if (half)
      KIRZL_CHECK(master->dtype() == DType::f32 && master->is_contiguous() && master->numel() == p.numel() &&
                      master->device() == p.device(),
                  who, ": master weights ", master->describe(), " of parameter ", k, " must be contiguous f32 of ",
                  p.numel(), " elements on ", p.device().str());
    const DType sd = p.dtype() == DType::f64 ? DType::f64 : DType::f32;
    for (int s = 0; s < n_state; ++s)
      if (!l.state[s].empty()) {
        const Tensor& b = l.state[s][k];
        KIRZL_CHECK(b.defined() && b.dtype() == sd && b.is_contiguous() && b.numel() == p.numel() &&
                        b.device() == p.device(),
                    who, ": state tensor ", b.describe(), " (list ", s, ") of parameter ", k, " must be contiguous ",
                    dtype_name(sd), " of ", p.numel(), " elements on ", p.device().str());
      }
    classes[{p.dtype(), g.dtype()}].push_back(k);
  }
  return classes;
}

/// Runs f.template operator()<T, G>() for a (param, grad) dtype class with device types.
template <typename F>
void dispatch_class(std::pair<DType, DType> cls, const char* who, F&& f) {
  dispatch_floating(cls.first, who, [&]<typename P>() {
    using T = device_t<P>;
    if (cls.second == cls.first) {
      f.template operator()<T, T>();
    } else if constexpr (!std::is_same_v<T, float> && !std::is_same_v<T, double>) {
      f.template operator()<T, float>();
    } else {
      KIRZL_FAIL(ErrorCode::Internal, who, ": unexpected gradient dtype ", dtype_name(cls.second));
    }
  });
}

void* ptr_or_null(const std::vector<Tensor>& list, size_t k) {
  if (list.empty() || !list[k].defined()) return nullptr;
  return list[k].data_ptr();
}

template <int D, int NS>
mt::Entry<D, NS> entry_of(const OptimLists& l, size_t k, int n_state) {
  mt::Entry<D, NS> e;
  e.ptrs[0] = l.params[k].data_ptr();
  e.ptrs[1] = l.grads[k].data_ptr();
  e.ptrs[2] = ptr_or_null(l.masters, k);
  for (int s = 0; s < n_state; ++s) e.ptrs[3 + s] = ptr_or_null(l.state[s], k);
  e.size = l.params[k].numel();
  return e;
}

}  // namespace

void multi_tensor_sgd(const OptimLists& lists, const std::vector<uint8_t>& first, const SgdArgs& args) {
  const char* who = "SGD.step (CUDA)";
  auto classes = classes_of(who, lists, 1);
  KIRZL_CHECK(first.size() == lists.params.size(), who, ": 'first' has ", first.size(), " entries for ",
              lists.params.size(), " parameters");
  if (lists.params.empty()) return;
  cudaStream_t stream = prepare(lists.params[0]);
  for (const auto& [cls, idx] : classes) {
    std::vector<mt::Entry<4, 1>> entries;
    for (size_t k : idx) {
      auto e = entry_of<4, 1>(lists, k, 1);
      e.scalars[0] = first[k] ? 1.0 : 0.0;
      entries.push_back(e);
    }
    dispatch_class(cls, who, [&]<typename T, typename G>() {
      using M = math_t<T>;
      SgdParams<M> a{static_cast<M>(args.lr), static_cast<M>(args.weight_decay), static_cast<M>(args.momentum),
                     static_cast<M>(1.0 - args.dampening), args.nesterov, args.maximize};
      mt::apply(entries, [&](const mt::Meta<4, 1>& meta, int blocks) {
        sgd_kernel<T, G><<<blocks, mt::kThreads, 0, stream>>>(meta, a);
        KIRZL_CUDA_LAUNCH_CHECK();
      });
    });
  }
}

void multi_tensor_adam(const OptimLists& lists, const std::vector<int64_t>& steps, const AdamArgs& args) {
  const char* who = args.decoupled ? "AdamW.step (CUDA)" : "Adam.step (CUDA)";
  auto classes = classes_of(who, lists, 3);
  KIRZL_CHECK(steps.size() == lists.params.size(), who, ": ", steps.size(), " step counts for ",
              lists.params.size(), " parameters");
  KIRZL_CHECK(lists.state[0].size() == lists.params.size() && lists.state[1].size() == lists.params.size(), who,
              ": exp_avg and exp_avg_sq are required for every parameter");
  KIRZL_CHECK(args.amsgrad == !lists.state[2].empty(), who, ": max_exp_avg_sq must be given exactly with amsgrad");
  if (lists.params.empty()) return;
  const bool capturable = args.device_steps.defined();
  if (capturable) {
    KIRZL_CHECK(args.slots.size() == lists.params.size() && args.device_steps.dtype() == DType::f64 &&
                    args.device_steps.device() == lists.params[0].device() && args.device_lr.defined() &&
                    args.device_lr.dtype() == DType::f64 && args.device_lr.device() == lists.params[0].device(),
                who, ": capturable counters must be f64 on the parameters' device with one slot per parameter");
  }
  cudaStream_t stream = prepare(lists.params[0]);
  if (capturable) {
    for (size_t begin = 0; begin < args.slots.size(); begin += kMaxStepSlots) {
      StepSlots s{};
      s.n = static_cast<int>(std::min<size_t>(kMaxStepSlots, args.slots.size() - begin));
      for (int i = 0; i < s.n; ++i) s.slot[i] = args.slots[begin + static_cast<size_t>(i)];
      advance_steps_kernel<<<1, kMaxStepSlots, 0, stream>>>(args.device_steps.data<double>(), s);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
  }
  for (const auto& [cls, idx] : classes) {
    std::vector<mt::Entry<6, 2>> entries;
    for (size_t k : idx) {
      auto e = entry_of<6, 2>(lists, k, 3);
      if (capturable) {
        e.scalars[0] = static_cast<double>(args.slots[k]);
        entries.push_back(e);
        continue;
      }
      KIRZL_CHECK(steps[k] >= 1, who, ": step count of parameter ", k, " must be >= 1, got ", steps[k]);
      const double t = static_cast<double>(steps[k]);
      // As the CPU loop: lr / bc1 and 1 / sqrt(bc2) in f64, rounded to the math type in the kernel.
      e.scalars[0] = args.lr / (1.0 - std::pow(args.beta1, t));
      e.scalars[1] = 1.0 / std::sqrt(1.0 - std::pow(args.beta2, t));
      entries.push_back(e);
    }
    dispatch_class(cls, who, [&]<typename T, typename G>() {
      using M = math_t<T>;
      AdamParams<M> a{static_cast<M>(args.beta1),
                      static_cast<M>(args.beta2),
                      static_cast<M>(args.eps),
                      static_cast<M>(args.decoupled ? 1.0 - args.lr * args.weight_decay : 1.0),
                      static_cast<M>(args.decoupled ? 0.0 : args.weight_decay),
                      args.maximize};
      if (capturable) {
        a.lr = args.device_lr.data<double>();
        a.steps = args.device_steps.data<double>();
        a.beta1 = args.beta1;
        a.beta2 = args.beta2;
        a.decoupled_decay = args.decoupled ? args.weight_decay : 0.0;
      }
      mt::apply(entries, [&](const mt::Meta<6, 2>& meta, int blocks) {
        adam_kernel<T, G><<<blocks, mt::kThreads, 0, stream>>>(meta, a);
        KIRZL_CUDA_LAUNCH_CHECK();
      });
    });
  }
}

namespace {

/// LAMB's lists, checked, as multi-tensor entries per (param, grad) dtype class (NS scalars:
/// 0 = 1 / (1 - β1^t), 1 = 1 / sqrt(1 - β2^t), the rest left for the caller).
template <int NS>
struct LambClasses {
  std::map<std::pair<DType, DType>, std::vector<size_t>> classes;
  std::vector<std::vector<mt::Entry<5, NS>>> entries;  // per class, in class order
  int64_t chunks = 0;                                   // over all classes
};

template <int NS>
LambClasses<NS> lamb_classes(const char* who, const OptimLists& lists, const std::vector<int64_t>& steps,
                             const LambArgs& args) {
  LambClasses<NS> out;
  out.classes = classes_of(who, lists, 2);
  KIRZL_CHECK(steps.size() == lists.params.size(), who, ": ", steps.size(), " step counts for ",
              lists.params.size(), " parameters");
  KIRZL_CHECK(lists.state[0].size() == lists.params.size() && lists.state[1].size() == lists.params.size(), who,
              ": exp_avg and exp_avg_sq are required for every parameter");
  for (const auto& [cls, idx] : out.classes) {
    std::vector<mt::Entry<5, NS>> entries;
    for (size_t k : idx) {
      KIRZL_CHECK(steps[k] >= 1, who, ": step count of parameter ", k, " must be >= 1, got ", steps[k]);
      auto e = entry_of<5, NS>(lists, k, 2);
      const double t = static_cast<double>(steps[k]);
      e.scalars[0] = 1.0 / (1.0 - std::pow(args.beta1, t));
      e.scalars[1] = 1.0 / std::sqrt(1.0 - std::pow(args.beta2, t));
      entries.push_back(e);
    }
    out.chunks += mt::total_chunks(entries);
    out.entries.push_back(std::move(entries));
  }
  return out;
}

template <typename M>
LambParams<M> lamb_params(const LambArgs& args) {
  return {static_cast<M>(args.beta1), static_cast<M>(args.beta2), static_cast<M>(args.eps),
          static_cast<M>(args.weight_decay), args.lr};
}

/// Runs f.template operator()<T, G>(entries, base) for each class of `lc` in class order, with the
/// device types of the class; `base` is the class's first chunk counted over all classes (where
/// its partial sums sit in pass 1's scratch).
template <int NS, typename F>
void for_each_class(const char* who, const LambClasses<NS>& lc, F&& f) {
  size_t c = 0;
  int64_t base = 0;
  for (const auto& [cls, idx] : lc.classes) {
    const auto& entries = lc.entries[c++];
    dispatch_class(cls, who, [&]<typename T, typename G>() { f.template operator()<T, G>(entries, base); });
    base += mt::total_chunks(entries);
  }
}

/// Pass 1 over every class: moments updated, two f64 partial sums per chunk in the returned
/// scratch (from the caching allocator), class after class in chunk order.
Tensor lamb_moments_pass(const char* who, const LambClasses<2>& lc, const OptimLists& lists, const LambArgs& args,
                         cudaStream_t stream) {
  Tensor partials = empty({std::max<int64_t>(2 * lc.chunks, 1)},
                          TensorOptions{.dtype = DType::f64, .device = lists.params[0].device()});
  double* part = partials.data<double>();
  for_each_class(who, lc, [&]<typename T, typename G>(const auto& entries, int64_t base) {
    const auto a = lamb_params<math_t<T>>(args);
    mt::apply(entries, [&](const mt::Meta<5, 2>& meta, int blocks) {
      lamb_moments_kernel<T, G><<<blocks, mt::kThreads, 0, stream>>>(meta, a, part, base);
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
  return partials;
}

}  // namespace

void multi_tensor_lamb(const OptimLists& lists, const std::vector<int64_t>& steps, const LambArgs& args) {
  const char* who = "LAMB.step (CUDA)";
  const LambClasses<2> lc = lamb_classes<2>(who, lists, steps, args);
  if (lists.params.empty()) return;
  cudaStream_t stream = prepare(lists.params[0]);
  Tensor partials = lamb_moments_pass(who, lc, lists, args, stream);
  // Every launch of pass 1 is on the stream before pass 2 starts.
  const double* part = partials.data<double>();
  for_each_class(who, lc, [&]<typename T, typename G>(const auto& entries, int64_t base) {
    const auto a = lamb_params<math_t<T>>(args);
    mt::apply(entries, [&](const mt::Meta<5, 2>& meta, int blocks) {
      lamb_update_kernel<T><<<blocks, mt::kThreads, 0, stream>>>(meta, a, part, base);
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

// Note [sharded LAMB on CUDA]: the pieces' partial norms go to the host (two doubles per 64k
// elements, one synchronising copy per step) and are summed there per piece in chunk order, so
// that LAMB::update_all can add them per whole tensor and all-reduce them as on the CPU; the
// trust ratios come back as per-tensor kernel scalars. Only the sharded path pays the copy.
std::vector<double> multi_tensor_lamb_moments(const OptimLists& lists, const std::vector<int64_t>& steps,
                                              const LambArgs& args) {
  const char* who = "LAMB.step (CUDA, pieces of whole tensors)";
  const LambClasses<2> lc = lamb_classes<2>(who, lists, steps, args);
  std::vector<double> sums(2 * lists.params.size(), 0.0);
  if (lists.params.empty()) return sums;
  cudaStream_t stream = prepare(lists.params[0]);
  const Tensor host = lamb_moments_pass(who, lc, lists, args, stream).to(Device::cpu());
  const double* h = host.data<double>();
  int64_t chunk = 0;
  for (const auto& [cls, idx] : lc.classes)
    for (size_t k : idx) {
      const int64_t chunks = (lists.params[k].numel() + mt::kChunk - 1) / mt::kChunk;
      for (int64_t i = 0; i < chunks; ++i, ++chunk) {
        sums[2 * k] += h[2 * chunk];
        sums[2 * k + 1] += h[2 * chunk + 1];
      }
    }
  return sums;
}

void multi_tensor_lamb_apply(const OptimLists& lists, const std::vector<int64_t>& steps, const LambArgs& args,
                             const std::vector<double>& trust) {
  const char* who = "LAMB.step (CUDA, pieces of whole tensors)";
  LambClasses<3> lc = lamb_classes<3>(who, lists, steps, args);
  KIRZL_CHECK(trust.size() == lists.params.size(), who, ": ", trust.size(), " trust ratios for ",
              lists.params.size(), " parameters");
  if (lists.params.empty()) return;
  cudaStream_t stream = prepare(lists.params[0]);
  size_t c = 0;
  for (const auto& [cls, idx] : lc.classes) {
    auto& entries = lc.entries[c++];
    for (size_t j = 0; j < idx.size(); ++j) entries[j].scalars[2] = trust[idx[j]];
  }
  for_each_class(who, lc, [&]<typename T, typename G>(const auto& entries, int64_t) {
    const auto a = lamb_params<math_t<T>>(args);
    mt::apply(entries, [&](const mt::Meta<5, 3>& meta, int blocks) {
      lamb_apply_kernel<T><<<blocks, mt::kThreads, 0, stream>>>(meta, a);
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

void register_multi_tensor_optim_kernels() {
  KIRZL_REGISTER_KERNEL(multi_tensor_sgd, DeviceType::CUDA, &multi_tensor_sgd);
  KIRZL_REGISTER_KERNEL(multi_tensor_adam, DeviceType::CUDA, &multi_tensor_adam);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb, DeviceType::CUDA, &multi_tensor_lamb);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb_moments, DeviceType::CUDA, &multi_tensor_lamb_moments);
  KIRZL_REGISTER_KERNEL(multi_tensor_lamb_apply, DeviceType::CUDA, &multi_tensor_lamb_apply);
  KIRZL_REGISTER_KERNEL(multi_tensor_launch_count, DeviceType::CUDA, &multi_tensor_launch_count);
}

}  // namespace kirzl::kernels::cuda
