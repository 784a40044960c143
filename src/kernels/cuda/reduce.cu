// CUDA reductions: sum over any set of dims, max/min with indices along one dim.
//
// Note [cuda reductions]: x is seen as [n_out kept positions] x [n_red reduced positions], each
// side an offset calculator over its merged dims (size-1 dims dropped; reduced dims ordered by
// decreasing stride so the innermost is the one closest to contiguous). Two layouts:
//  * rows: the innermost memory dim is reduced. A warp (or, for long rows, a 256-thread block)
//    walks one output's reduced range with consecutive threads on consecutive elements, then
//    combines with warp shuffles (and shared memory across warps).
//  * cols: the innermost memory dim is kept. A 32 x 8 block handles 32 neighbouring outputs:
//    threadIdx.x picks the output (coalesced loads), threadIdx.y strides over the reduced range;
//    the 8 partials are combined in shared memory.
// When there are too few outputs to fill the GPU, the reduced range is cut into G chunks: stage
// one writes [n_out, G] partial states to a scratch tensor, stage two reduces them as rows.
// Every choice (layout, G, chunking, the order of additions) depends only on the shapes and
// strides, never on the device or timing, and no atomics are used: results are deterministic.
// Sums accumulate in f32 (f32, bf16, f16), f64 (f64) or i64 (integers). max/min combine
// (value, index) states with a rule that is associative and commutative -- NaN beats any number,
// a better value beats a worse one, and on ties (or two NaNs) the smaller index wins -- so the
// result is the CPU's "first occurrence; first NaN wins" whatever the combination order.
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/copy.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kColX = 32, kColY = kThreads / kColX;
// A row reduction uses a whole block per output from this many elements per chunk on.
constexpr int64_t kBlockRowMin = 4096;

// ---- reduction ops --------------------------------------------------------------------------

template <typename Acc>
struct SumOp {
  using State = Acc;
  __device__ __forceinline__ State identity() const { return Acc(0); }
  __device__ __forceinline__ State combine(State a, State b) const { return a + b; }
  __device__ __forceinline__ State shfl_xor(State s, int m) const { return __shfl_xor_sync(0xffffffffu, s, m); }
};

// Values compared in float (16-bit floats widened exactly), double, or int64 (every integer dtype).
template <typename V>
struct ExtState {
  V v;
  int64_t i;  // -1: empty
};

template <bool kMax, typename V>
struct ExtremumOp {
  using State = ExtState<V>;
  __device__ __forceinline__ State identity() const { return {V(0), -1}; }
  __device__ __forceinline__ static bool is_nan(V v) { return v != v; }
  __device__ __forceinline__ State combine(State a, State b) const {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) {
      if (an && bn) return a.i < b.i ? a : b;
      return an ? a : b;
    }
    if (kMax ? b.v > a.v : b.v < a.v) return b;
    if (kMax ? a.v > b.v : a.v < b.v) return a;
    return a.i < b.i ? a : b;
  }
  __device__ __forceinline__ State shfl_xor(State s, int m) const {
    return {__shfl_xor_sync(0xffffffffu, s.v, m), static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(s.i), m))};
  }
};

// ---- loaders: the state of reduced position r of output o ------------------------------------

// Elements of x through the kept and reduced offset calculators.
template <typename T, typename Index, typename Make>
struct InputLoader {
  const T* x;
  OffsetCalc<Index, 1> kept, red;
  Make make;
  __device__ __forceinline__ Index row(Index o) const {
    Index off[1];
    kept.offsets(o, off);
    return off[0];
  }
  __device__ __forceinline__ auto operator()(Index base, Index r) const {
    Index off[1];
    red.offsets(r, off);
    return make(x[base + off[0]], r);
  }
};

template <typename Acc>
struct MakeSum {
  template <typename T>
  __device__ __forceinline__ Acc operator()(T v, int64_t) const { return static_cast<Acc>(load_acc(v)); }
};

template <typename V>
struct MakeExt {
  template <typename T>
  __device__ __forceinline__ ExtState<V> operator()(T v, int64_t r) const { return {static_cast<V>(load_acc(v)), r}; }
};

// Stage two: the [n_out, G] partial states of stage one.
template <typename State, typename Index>
struct PartialLoader {
  const State* p;
  Index g;
  __device__ __forceinline__ Index row(Index o) const { return o * g; }
  __device__ __forceinline__ State operator()(Index base, Index r) const { return p[base + r]; }
};

// ---- writers ---------------------------------------------------------------------------------

template <typename State, typename Index>
struct PartialWriter {
  State* p;
  Index g;
  __device__ __forceinline__ void operator()(Index o, Index chunk, State s) const { p[o * g + chunk] = s; }
};

template <typename T, typename Index>
struct SumWriter {
  T* out;
  template <typename Acc>
  __device__ __forceinline__ void operator()(Index o, Index, Acc s) const {
    if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) out[o] = store_as<T>(static_cast<float>(s));
    else out[o] = static_cast<T>(s);
  }
};

template <typename T, typename Index>
struct ExtWriter {
  T* values;         // may be null
  int64_t* indices;  // may be null
  template <typename V>
  __device__ __forceinline__ void operator()(Index o, Index, ExtState<V> s) const {
    if (values) {
      if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) values[o] = store_as<T>(static_cast<float>(s.v));
      else values[o] = static_cast<T>(s.v);
    }
    if (indices) indices[o] = s.i;
  }
};

// ---- kernels ---------------------------------------------------------------------------------

// Each thread folds positions t, t + kStride, ... of [r0, r1) into four independent states (for
// memory-level parallelism), combined in a fixed order.
template <int kStride, typename Op, typename Loader, typename Index>
__device__ __forceinline__ typename Op::State fold_range(const Op& op, const Loader& ld, Index base, Index r0, Index r1) {
  using State = typename Op::State;
  State s0 = op.identity(), s1 = op.identity(), s2 = op.identity(), s3 = op.identity();
  Index r = r0;
  for (; r + 3 * kStride < r1; r += 4 * kStride) {
    s0 = op.combine(s0, ld(base, r));
    s1 = op.combine(s1, ld(base, r + kStride));
    s2 = op.combine(s2, ld(base, r + 2 * kStride));
    s3 = op.combine(s3, ld(base, r + 3 * kStride));
  }
  for (; r < r1; r += kStride) s0 = op.combine(s0, ld(base, r));
  return op.combine(op.combine(s0, s1), op.combine(s2, s3));
}

template <typename Op>
__device__ __forceinline__ typename Op::State warp_combine(const Op& op, typename Op::State s) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) s = op.combine(s, op.shfl_xor(s, m));
  return s;
}

// Rows layout: kPerItem threads (32: one warp, or 256: the block) per (output, chunk) item.
template <int kPerItem, typename Op, typename Loader, typename Writer, typename Index>
__global__ void __launch_bounds__(kThreads)
    reduce_rows_kernel(Op op, Loader ld, Writer wr, Index n_out, Index n_red, Index g, Index chunk) {
  using State = typename Op::State;
  constexpr int kItemsPerBlock = kThreads / kPerItem;
  const int t = threadIdx.x % kPerItem;
  const Index n_items = n_out * g;
  // Loop bounds are uniform per item group (warp or block), as shuffles and barriers need.
  for (Index item = Index(blockIdx.x) * kItemsPerBlock + threadIdx.x / kPerItem; item < n_items;
       item += Index(gridDim.x) * kItemsPerBlock) {
    const Index o = item / g, c = item % g;
    const Index r0 = c * chunk, r1 = min(n_red, r0 + chunk);
    State s = fold_range<kPerItem>(op, ld, ld.row(o), r0 + t, r1);
    s = warp_combine(op, s);
    if constexpr (kPerItem > 32) {
      __shared__ State warp_states[kThreads / 32];
      if (t % 32 == 0) warp_states[t / 32] = s;
      __syncthreads();
      if (t == 0) {
        State b = warp_states[0];
#pragma unroll
        for (int w = 1; w < kThreads / 32; ++w) b = op.combine(b, warp_states[w]);
        wr(o, c, b);
      }
      __syncthreads();
    } else if (t == 0) {
      wr(o, c, s);
    }
  }
}

// Cols layout: a (kColX x kColY) block per (tile of kColX outputs, chunk) item.
template <typename Op, typename Loader, typename Writer, typename Index>
__global__ void __launch_bounds__(kThreads)
    reduce_cols_kernel(Op op, Loader ld, Writer wr, Index n_out, Index n_red, Index g, Index chunk) {
  using State = typename Op::State;
  __shared__ State partial[kColY][kColX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const Index tiles = (n_out + kColX - 1) / kColX;
  for (Index item = blockIdx.x; item < tiles * g; item += gridDim.x) {
    const Index tile = item / g, c = item % g;
    const Index o = tile * kColX + tx;
    const Index r0 = c * chunk, r1 = min(n_red, r0 + chunk);
    State s = op.identity();
    if (o < n_out) s = fold_range<kColY>(op, ld, ld.row(o), r0 + ty, r1);
    partial[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && o < n_out) {
      State b = partial[0][tx];
#pragma unroll
      for (int y = 1; y < kColY; ++y) b = op.combine(b, partial[y][tx]);
      wr(o, c, b);
    }
    __syncthreads();
  }
}

// ---- host side -------------------------------------------------------------------------------

struct Layout {
  Shape kept_sizes, kept_strides, red_sizes, red_strides;
  bool rows = true;  // the innermost memory dim is a reduced one
};

template <typename Index>
OffsetCalc<Index, 1> calc_of(const Shape& sizes, const Shape& strides) {
  cpu::LoopPlan<1> plan = cpu::make_plan<1>(sizes, {strides});
  OffsetCalc<Index, 1> c{};
  c.ndim = static_cast<int>(plan.shape.size());
  for (int d = 0; d < c.ndim; ++d) {
    c.sizes[d] = static_cast<Index>(plan.shape[d]);
    c.strides[0][d] = static_cast<Index>(plan.strides[0][d]);
  }
  return c;
}

// Splits of the reduced range: enough (output, chunk) items to fill a large GPU, chunks long
// enough to amortise the second stage. A function of the sizes alone (Note [cuda reductions]).
int64_t choose_split(bool rows, int64_t n_out, int64_t n_red) {
  if (rows) {
    const int64_t want = (1024 + n_out - 1) / n_out;  // ~1024 items
    return std::clamp<int64_t>(want, 1, std::max<int64_t>(1, n_red / 2048));
  }
  const int64_t tiles = (n_out + kColX - 1) / kColX;
  const int64_t want = (1024 + tiles - 1) / tiles;  // ~1024 blocks
  return std::clamp<int64_t>(want, 1, std::max<int64_t>(1, n_red / 256));
}

template <typename Op, typename Loader, typename Writer, typename Index>
void launch(cudaStream_t stream, bool rows, const Op& op, const Loader& ld, const Writer& wr, int64_t n_out, int64_t n_red,
            int64_t g, int64_t chunk) {
  if (rows) {
    if (chunk >= kBlockRowMin) {
      reduce_rows_kernel<kThreads, Op, Loader, Writer, Index><<<grid_for(n_out * g, 1), kThreads, 0, stream>>>(
          op, ld, wr, Index(n_out), Index(n_red), Index(g), Index(chunk));
    } else {
      reduce_rows_kernel<32, Op, Loader, Writer, Index><<<grid_for(n_out * g, kThreads / 32), kThreads, 0, stream>>>(
          op, ld, wr, Index(n_out), Index(n_red), Index(g), Index(chunk));
    }
  } else {
    const int64_t tiles = (n_out + kColX - 1) / kColX;
    reduce_cols_kernel<Op, Loader, Writer, Index><<<grid_for(tiles * g, 1), dim3(kColX, kColY), 0, stream>>>(
        op, ld, wr, Index(n_out), Index(n_red), Index(g), Index(chunk));
  }
  KIRZL_CUDA_LAUNCH_CHECK();
}

// One or two stages; `wr` writes the final states.
template <typename Index, typename Op, typename Loader, typename Writer>
void run_reduction(const Tensor& like, const Layout& lay, const Op& op, const Loader& ld, const Writer& wr, int64_t n_out,
                   int64_t n_red) {
  using State = typename Op::State;
  cudaStream_t stream = prepare(like);
  int64_t g = choose_split(lay.rows, n_out, n_red);
  if (g <= 1) return launch<Op, Loader, Writer, Index>(stream, lay.rows, op, ld, wr, n_out, n_red, 1, n_red);
  const int64_t chunk = (n_red + g - 1) / g;
  g = (n_red + chunk - 1) / chunk;  // no empty chunk
  // Scratch from the caching allocator; stream-ordered, so freeing it after the launches is safe.
  Tensor scratch = empty({n_out * g * static_cast<int64_t>(sizeof(State))}, TensorOptions{.dtype = DType::u8, .device = like.device()});
  State* p = reinterpret_cast<State*>(scratch.data_ptr());
  launch<Op, Loader, PartialWriter<State, Index>, Index>(stream, lay.rows, op, ld, PartialWriter<State, Index>{p, Index(g)}, n_out,
                                                        n_red, g, chunk);
  launch<Op, PartialLoader<State, Index>, Writer, Index>(stream, /*rows=*/true, op, PartialLoader<State, Index>{p, Index(g)}, wr,
                                                         n_out, g, 1, g);
}

bool fits_int32(const Tensor& x, int64_t n_out, int64_t n_red) {
  constexpr int64_t kLimit = int64_t{1} << 30;  // headroom for grid-stride steps and n_out * G
  int64_t far = 0;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.stride(d) < 0) return false;
    far += (x.size(d) - 1) * x.stride(d);
  }
  return far < kLimit && n_red < kLimit && n_out * 1024 < kLimit;
}

// The kept dims in order and the reduced dims by decreasing stride, size-1 dims dropped.
Layout layout_of(const Tensor& x, const std::vector<bool>& reduce) {
  Layout l;
  std::vector<std::pair<int64_t, int64_t>> red;  // (stride, size)
  int64_t min_kept = INT64_MAX, min_red = INT64_MAX;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    if (reduce[d]) {
      red.emplace_back(x.stride(d), x.size(d));
      min_red = std::min(min_red, x.stride(d));
    } else {
      l.kept_sizes.push_back(x.size(d));
      l.kept_strides.push_back(x.stride(d));
      min_kept = std::min(min_kept, x.stride(d));
    }
  }
  std::stable_sort(red.begin(), red.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (auto& [st, sz] : red) {
    l.red_sizes.push_back(sz);
    l.red_strides.push_back(st);
  }
  l.rows = red.empty() ? true : min_red < min_kept;
  return l;
}

template <typename T> struct SumAcc { using type = std::conditional_t<std::is_integral_v<T>, int64_t, float>; };
template <> struct SumAcc<double> { using type = double; };

template <typename T> struct ExtValue { using type = std::conditional_t<std::is_integral_v<T>, int64_t, float>; };
template <> struct ExtValue<double> { using type = double; };

}  // namespace

void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  KIRZL_INTERNAL_ASSERT(out.is_contiguous() && out.dtype() == x.dtype() && out.device() == x.device());
  const int64_t n_out = out.numel();
  if (n_out == 0) return;
  int64_t n_red = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduce[d]) n_red *= x.size(d);
  if (n_red == 0) return fill(out, 0.0);
  const Layout lay = layout_of(x, reduce);
  dispatch_all(x.dtype(), "sum", [&]<typename T>() {
    using D = device_t<T>;
    using Acc = typename SumAcc<T>::type;
    auto go = [&]<typename Index>() {
      using Ld = InputLoader<D, Index, MakeSum<Acc>>;
      Ld ld{dptr<T>(x), calc_of<Index>(lay.kept_sizes, lay.kept_strides), calc_of<Index>(lay.red_sizes, lay.red_strides), {}};
      run_reduction<Index>(x, lay, SumOp<Acc>{}, ld, SumWriter<D, Index>{dptr<T>(out)}, n_out, n_red);
    };
    if (fits_int32(x, n_out, n_red)) go.template operator()<int32_t>();
    else go.template operator()<int64_t>();
  });
}

void extremum(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  KIRZL_INTERNAL_ASSERT(x.is_contiguous() && x.size(dim) > 0);
  int64_t outer = 1, n = x.size(dim), inner = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < dim) outer *= x.size(d);
    if (d > dim) inner *= x.size(d);
  }
  const int64_t n_out = outer * inner;
  if (n_out == 0) return;
  Layout lay;
  lay.rows = inner == 1;
  lay.kept_sizes = Shape{outer, inner};
  lay.kept_strides = Shape{n * inner, 1};
  lay.red_sizes = Shape{n};
  lay.red_strides = Shape{inner};
  dispatch_all(x.dtype(), is_max ? "max" : "min", [&]<typename T>() {
    using D = device_t<T>;
    using V = typename ExtValue<T>::type;
    D* vo = values.defined() ? dptr<T>(values) : nullptr;
    int64_t* io = indices.defined() ? static_cast<int64_t*>(indices.data_ptr()) : nullptr;
    auto go = [&]<typename Index, bool kMax>() {
      using Ld = InputLoader<D, Index, MakeExt<V>>;
      Ld ld{dptr<T>(x), calc_of<Index>(lay.kept_sizes, lay.kept_strides), calc_of<Index>(lay.red_sizes, lay.red_strides), {}};
      run_reduction<Index>(x, lay, ExtremumOp<kMax, V>{}, ld, ExtWriter<D, Index>{vo, io}, n_out, n);
    };
    const bool small = fits_int32(x, n_out, n);
    if (small && is_max) go.template operator()<int32_t, true>();
    else if (small) go.template operator()<int32_t, false>();
    else if (is_max) go.template operator()<int64_t, true>();
    else go.template operator()<int64_t, false>();
  });
}

void register_reduce_kernels() {
  KIRZL_REGISTER_KERNEL(sum, DeviceType::CUDA, &sum);
  KIRZL_REGISTER_KERNEL(extremum, DeviceType::CUDA, &extremum);
}

}  // namespace kirzl::kernels::cuda
