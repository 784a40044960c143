// Op table rows: matrix products (include/kirzl/ops/linalg.hpp): odd sizes, a transposed and a
// strided operand (read in place), broadcast batches, 1-D operands, an empty inner dimension, and
// one larger product; bmm and linear with and without bias.
#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// C[b] = A[b] B[b] for A [.., n, k] and B [.., k, m] whose batch dims broadcast; 1-D operands
/// are promoted as numpy does and the added dim removed.
Tensor ref_matmul(const Tensor& a_in, const Tensor& b_in) {
  Shape sa = a_in.shape(), sb = b_in.shape();
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa = Shape{1, sa[0]};
  if (b1) sb = Shape{sb[0], 1};
  const int64_t n = sa[sa.size() - 2], k = sa[sa.size() - 1], m = sb[sb.size() - 1];
  std::vector<int64_t> ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = ref::broadcast({Shape(ba), Shape(bb)});
  const std::vector<double> a = ref::values(a_in), b = ref::values(b_in);
  std::vector<double> c;
  for (int64_t i = 0; i < ref::numel_of(batch); ++i) {
    const std::vector<int64_t> bc = ref::coords(i, batch);
    const int64_t oa = ref::broadcast_index(bc, Shape(ba)) * n * k, ob = ref::broadcast_index(bc, Shape(bb)) * k * m;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t col = 0; col < m; ++col) {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += a[oa + r * k + j] * b[ob + j * m + col];
        c.push_back(s);
      }
  }
  std::vector<int64_t> out(batch.begin(), batch.end());
  if (!a1) out.push_back(n);
  if (!b1) out.push_back(m);
  return ref::make(Shape(out), c);
}

Tensor transpose_last(const Tensor& t) { return ref::make({t.shape()[1], t.shape()[0]}, [&] {
  const std::vector<double> v = ref::values(t);
  std::vector<double> r(v.size());
  const int64_t R = t.shape()[0], C = t.shape()[1];
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) r[j * R + i] = v[i * C + j];
  return r;
}()); }

Row gemm_row(const char* op, const char* variant, std::vector<Arg> args, Call call, Call reference) {
  Row r;
  r.op = op;
  r.variant = variant;
  r.args = std::move(args);
  r.dtypes = float_dtypes();
  r.call = std::move(call);
  r.reference = std::move(reference);
  // Sums of k products in another order (Eigen, cuBLASLt): f32 errors of order k * eps.
  r.tol.reference = 20;
  r.tol.cuda = 50;
  r.tol.low_precision = 2;
  return r;
}

}  // namespace

void add_linalg_rows(std::vector<Row>& rows) {
  auto mm = [](const Inputs& in) { return matmul(in[0], in[1]); };
  auto mm_ref = [](const Inputs& in) { return ref_matmul(in[0], in[1]); };
  rows.push_back(gemm_row("matmul", "odd_7x5_5x3", {{.shape = {7, 5}}, {.shape = {5, 3}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "strided_7x5_5x3", {{.shape = {7, 5}, .strided = true}, {.shape = {5, 3}, .strided = true}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "transposed_b_7x5_3x5", {{.shape = {7, 5}}, {.shape = {3, 5}}},
                          [](const Inputs& in) { return matmul(in[0], in[1].transpose(0, 1)); },
                          [](const Inputs& in) { return ref_matmul(in[0], transpose_last(in[1])); }));
  rows.push_back(gemm_row("matmul", "transposed_a_5x7_5x3", {{.shape = {5, 7}}, {.shape = {5, 3}}},
                          [](const Inputs& in) { return matmul(in[0].transpose(0, 1), in[1]); },
                          [](const Inputs& in) { return ref_matmul(transpose_last(in[0]), in[1]); }));
  rows.push_back(gemm_row("matmul", "broadcast_2x1x4x3_3x3x5", {{.shape = {2, 1, 4, 3}}, {.shape = {3, 3, 5}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "dot_17", {{.shape = {17}}, {.shape = {17}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "vec_mat_5_5x3", {{.shape = {5}}, {.shape = {5, 3}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "mat_vec_4x2x5_5", {{.shape = {4, 2, 5}}, {.shape = {5}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "empty_inner_4x0_0x3", {{.shape = {4, 0}}, {.shape = {0, 3}}}, mm, mm_ref));
  rows.push_back(gemm_row("matmul", "large_65x257_257x129", {{.shape = {65, 257}}, {.shape = {257, 129}}}, mm, mm_ref));
  rows.push_back(gemm_row("bmm", "odd_3x4x5_3x5x2", {{.shape = {3, 4, 5}}, {.shape = {3, 5, 2}}},
                          [](const Inputs& in) { return bmm(in[0], in[1]); }, mm_ref));
  auto lin_ref = [](const Inputs& in) {
    // x [.., in] W^T + b: the product with W transposed, then the bias on every row.
    Tensor y = ref_matmul(in[0], transpose_last(in[1]));
    return in.size() > 2 ? ref::zip(y, in[2], [](double a, double b) { return a + b; }) : y;
  };
  rows.push_back(gemm_row("linear", "bias_2x3x5_4x5", {{.shape = {2, 3, 5}}, {.shape = {4, 5}}, {.shape = {4}}},
                          [](const Inputs& in) { return linear(in[0], in[1], in[2]); }, lin_ref));
  rows.push_back(gemm_row("linear", "no_bias_strided_6x5_4x5", {{.shape = {6, 5}, .strided = true}, {.shape = {4, 5}}},
                          [](const Inputs& in) { return linear(in[0], in[1]); }, lin_ref));
}

}  // namespace kirzl::testing::op_table
