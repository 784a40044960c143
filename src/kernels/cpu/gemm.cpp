// CPU GEMM through Eigen: strided matrices are mapped in place (row- or column-major with any
// leading dimension), so contiguous and transposed operands are never copied.
#include "kernels/cpu/gemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "kernels/copy.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kirzl/core/parallel.hpp"

namespace kirzl::kernels::cpu {

namespace {

enum class Layout { Row, Col, None };

struct Mapping {
  Layout layout;
  int64_t outer;  // Eigen's outer stride (leading dimension)
};

// How Eigen can see m without copying. A dimension of extent 1 places no constraint on its stride.
template <typename T>
Mapping mapping_of(const MatRef<T>& m) {
  if (m.cs == 1 || m.cols == 1) return {Layout::Row, m.rows > 1 ? m.rs : std::max<int64_t>(m.cols, 1)};
  if (m.rs == 1 || m.rows == 1) return {Layout::Col, m.cols > 1 ? m.cs : std::max<int64_t>(m.rows, 1)};
  return {Layout::None, 0};
}

template <typename T, int Order>
using OutMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T, int Order>
using InMap =
    Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T, int OO, int AO, int BO>
void product(const MatRef<T>& o, int64_t oo, const MatRef<const T>& a, int64_t ao, const MatRef<const T>& b, int64_t bo,
             T alpha, T beta) {
  OutMap<T, OO> mo(o.data, o.rows, o.cols, Eigen::OuterStride<>(oo));
  InMap<T, AO> ma(a.data, a.rows, a.cols, Eigen::OuterStride<>(ao));
  InMap<T, BO> mb(b.data, b.rows, b.cols, Eigen::OuterStride<>(bo));
  if (beta == T(0)) {
    if (alpha == T(1)) mo.noalias() = ma * mb;
    else mo.noalias() = (alpha * ma) * mb;
  } else {
    if (beta != T(1)) mo *= beta;
    mo.noalias() += (alpha * ma) * mb;
  }
}

template <typename T, int OO, int AO>
void product_b(const MatRef<T>& o, int64_t oo, const MatRef<const T>& a, int64_t ao, const MatRef<const T>& b,
               Mapping bm, T alpha, T beta) {
  if (bm.layout == Layout::Row) product<T, OO, AO, Eigen::RowMajor>(o, oo, a, ao, b, bm.outer, alpha, beta);
  else product<T, OO, AO, Eigen::ColMajor>(o, oo, a, ao, b, bm.outer, alpha, beta);
}

template <typename T, int OO>
void product_ab(const MatRef<T>& o, int64_t oo, const MatRef<const T>& a, Mapping am, const MatRef<const T>& b,
                Mapping bm, T alpha, T beta) {
  if (am.layout == Layout::Row) product_b<T, OO, Eigen::RowMajor>(o, oo, a, am.outer, b, bm, alpha, beta);
  else product_b<T, OO, Eigen::ColMajor>(o, oo, a, am.outer, b, bm, alpha, beta);
}

// Row-major copy of a matrix Eigen cannot map (e.g. stride 0 from expand, or both strides > 1).
template <typename T>
MatRef<const T> packed(const MatRef<const T>& m, std::vector<T>& buf) {
  buf.resize(static_cast<size_t>(m.rows * m.cols));
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j) buf[i * m.cols + j] = m.data[i * m.rs + j * m.cs];
  return {buf.data(), m.rows, m.cols, m.cols, 1};
}

}  // namespace

template <typename T>
void gemm_raw(MatRef<T> out, MatRef<const T> a, MatRef<const T> b, T alpha, T beta) {
  if (out.rows == 0 || out.cols == 0) return;
  if (a.cols == 0) {  // empty inner dimension: the product is zero
    for (int64_t i = 0; i < out.rows; ++i)
      for (int64_t j = 0; j < out.cols; ++j) {
        T& v = out.data[i * out.rs + j * out.cs];
        v = beta == T(0) ? T(0) : beta * v;
      }
    return;
  }
  std::vector<T> abuf, bbuf;
  Mapping am = mapping_of(a), bm = mapping_of(b);
  if (am.layout == Layout::None) am = mapping_of(a = packed(a, abuf));
  if (bm.layout == Layout::None) bm = mapping_of(b = packed(b, bbuf));
  Mapping om = mapping_of(out);
  bool out_ok = om.layout != Layout::None && (out.rows == 1 || out.rs != 0) && (out.cols == 1 || out.cs != 0);
  if (!out_ok) {
    std::vector<T> obuf(static_cast<size_t>(out.rows * out.cols));
    MatRef<T> tmp{obuf.data(), out.rows, out.cols, out.cols, 1};
    if (beta != T(0))
      for (int64_t i = 0; i < out.rows; ++i)
        for (int64_t j = 0; j < out.cols; ++j) obuf[i * out.cols + j] = out.data[i * out.rs + j * out.cs];
    gemm_raw<T>(tmp, a, b, alpha, beta);
    for (int64_t i = 0; i < out.rows; ++i)
      for (int64_t j = 0; j < out.cols; ++j) out.data[i * out.rs + j * out.cs] = obuf[i * out.cols + j];
    return;
  }
  if (om.layout == Layout::Row) product_ab<T, Eigen::RowMajor>(out, om.outer, a, am, b, bm, alpha, beta);
  else product_ab<T, Eigen::ColMajor>(out, om.outer, a, am, b, bm, alpha, beta);
}

template void gemm_raw<float>(MatRef<float>, MatRef<const float>, MatRef<const float>, float, float);
template void gemm_raw<double>(MatRef<double>, MatRef<const double>, MatRef<const double>, double, double);

namespace {

// Below this many multiply-adds per matrix, batches run in parallel (one single-threaded Eigen
// product each) instead of one after another with Eigen's own threading.
constexpr double kBatchParallelWork = double(1 << 21);

template <typename T>
void batched(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, T alpha, T beta) {
  const int64_t nb = out.dim() - 2;
  int64_t batch = 1;
  for (int64_t d = 0; d < nb; ++d) batch *= out.size(d);
  auto mat = [](const Tensor& t, bool trans) {
    MatRef<const T> m{static_cast<const T*>(t.data_ptr()), t.size(-2), t.size(-1), t.stride(-2), t.stride(-1)};
    return trans ? m.t() : m;
  };
  const MatRef<const T> a0 = mat(a, trans_a), b0 = mat(b, trans_b);
  const MatRef<T> o0{static_cast<T*>(out.data_ptr()), out.size(-2), out.size(-1), out.stride(-2), out.stride(-1)};
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t rem = i, oa = 0, ob = 0, oo = 0;
      for (int64_t d = nb - 1; d >= 0; --d) {
        int64_t k = rem % out.size(d);
        rem /= out.size(d);
        oa += k * a.stride(d);
        ob += k * b.stride(d);
        oo += k * out.stride(d);
      }
      MatRef<const T> ai = a0, bi = b0;
      MatRef<T> oi = o0;
      ai.data += oa;
      bi.data += ob;
      oi.data += oo;
      gemm_raw<T>(oi, ai, bi, alpha, beta);
    }
  };
  const double work = double(o0.rows) * double(o0.cols) * double(a0.cols);
  const bool worth_threads = work * double(batch) >= double(kParallelGrain);
  if (batch > 1 && worth_threads && (work < kBatchParallelWork || batch >= 4 * get_num_threads())) {
    static const bool eigen_ready = (Eigen::initParallel(), true);  // before Eigen runs on several threads
    (void)eigen_ready;
    parallel_for(batch, 1, run);
  } else {
    run(0, batch);
  }
}

void check_devices(const char* op, const Tensor& out, const Tensor& a, const Tensor& b) {
  KIRZL_CHECK(a.device() == out.device() && b.device() == out.device(), op,
              ": operands must be on one device, got out ", out.describe(), ", a ", a.describe(), ", b ",
              b.describe());
}

}  // namespace

Tensor widen_to_f32(const Tensor& t) {
  Tensor w = empty(t.shape(), {.dtype = DType::f32, .device = t.device()});
  kernels::copy(w, t);
  return w;
}

void gemm(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha, double beta) {
  check_devices("gemm", out, a, b);
  KIRZL_INTERNAL_ASSERT(out.dim() >= 2 && a.dim() == out.dim() && b.dim() == out.dim(), "gemm: ", out.describe(), " ",
                        a.describe(), " ", b.describe());
  const DType dt = out.dtype();
  if (dt == DType::bf16 || dt == DType::f16) {
    // 16-bit floats: compute in f32 and round once at the end.
    Tensor o32 = beta != 0.0 ? widen_to_f32(out) : empty(out.shape(), {.dtype = DType::f32, .device = out.device()});
    gemm(o32, widen_to_f32(a), widen_to_f32(b), trans_a, trans_b, alpha, beta);
    kernels::copy(out, o32);
    return;
  }
  if (dt == DType::f32) return batched<float>(out, a, b, trans_a, trans_b, float(alpha), float(beta));
  if (dt == DType::f64) return batched<double>(out, a, b, trans_a, trans_b, alpha, beta);
  KIRZL_FAIL(ErrorCode::InvalidArgument, "gemm: expected a floating dtype (f32, f64, bf16, f16), got ", out.describe());
}

void gemm_bias(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  check_devices("gemm_bias", out, a, b);
  KIRZL_CHECK(bias.device() == out.device(), "gemm_bias: bias ", bias.describe(), " is not on out's device (out ",
              out.describe(), ")");
  kernels::copy(out, bias);  // bias broadcast to every row, then out += a b^T
  gemm(out, a, b, false, true, 1.0, 1.0);
}

void register_gemm_kernels() {
  KIRZL_REGISTER_KERNEL(gemm, DeviceType::CPU, &gemm);
  KIRZL_REGISTER_KERNEL(gemm_bias, DeviceType::CPU, &gemm_bias);
}

}  // namespace kirzl::kernels::cpu
