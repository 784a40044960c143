// Op table rows: copies and casts (Tensor::to, contiguous, clone) and the joining/splitting ops
// (include/kirzl/ops/shape_ops.hpp): every floating dtype to every other and to i32, strided
// and transposed sources, a large odd size; cat, stack, split and chunk.
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

void add_copy_shape_rows(std::vector<Row>& rows) {
  // Casts: the row's dtype is the source; the reference rounds as the destination does (the
  // comparison's tolerance is the source dtype's, and the destination is at least as coarse or
  // exact for the values used).
  for (DType dst : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32})
    for (const auto& [variant, arg] : {std::pair<const char*, Arg>{"odd_257", {.shape = {257}}},
                                       {"strided_5x9", {.shape = {5, 9}, .strided = true}},
                                       {"large_1000003", {.shape = {1000003}}}}) {
      Row r;
      r.op = std::string("to_") + dtype_name(dst);
      r.variant = variant;
      r.args = {arg};
      if (dst == DType::i32) r.args[0].lo = -50, r.args[0].hi = 50;
      r.dtypes = float_dtypes();
      r.call = [dst](const Inputs& in) { return in[0].to(dst); };
      r.reference = [dst](const Inputs& in) {
        if (dst == DType::i32) return ref::map(in[0], [](double x) { return std::trunc(x); });
        return in[0].to(dst).to(DType::f64);  // rounding to the destination is what a cast is
      };
      r.differentiable = dst != DType::i32;
      if (dst != DType::f64)
        r.no_gradcheck = "the result is rounded to a coarser dtype than the finite differences need (to_f64 is checked)";
      rows.push_back(r);
    }
  for (const auto& [variant, arg, transpose] :
       {std::tuple<const char*, Arg, bool>{"strided_5x9", {.shape = {5, 9}, .strided = true}, false},
        {"transposed_7x5", {.shape = {7, 5}}, true}}) {
    Row r;
    r.op = "contiguous";
    r.variant = variant;
    r.args = {arg};
    r.dtypes = float_dtypes();
    const bool t = transpose;
    r.call = [t](const Inputs& in) { return (t ? in[0].transpose(0, 1) : in[0]).contiguous(); };
    r.reference = [t](const Inputs& in) {
      if (!t) return ref::make(in[0].shape(), ref::values(in[0]));
      const std::vector<double> v = ref::values(in[0]);
      const int64_t R = in[0].size(0), C = in[0].size(1);
      std::vector<double> o;
      for (int64_t j = 0; j < C; ++j)
        for (int64_t i = 0; i < R; ++i) o.push_back(v[i * C + j]);
      return ref::make({C, R}, o);
    };
    rows.push_back(r);
  }
  {
    Row r;
    r.op = "clone";
    r.variant = "strided_5x9";
    r.args = {Arg{.shape = {5, 9}, .strided = true}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) { return in[0].clone(); };
    r.reference = [](const Inputs& in) { return ref::make(in[0].shape(), ref::values(in[0])); };
    rows.push_back(r);
  }
  // cat along dim 0 and 1, stack, and split/chunk followed by a cat in reverse order (so that each
  // piece's gradient goes somewhere else).
  auto concat = [](const std::vector<Tensor>& parts, int64_t dim) {
    // Reference concatenation of 2-D parts along dim.
    std::vector<double> out;
    const int64_t R0 = parts[0].size(0);
    if (dim == 0) {
      int64_t rows_total = 0;
      for (const Tensor& p : parts) {
        const auto v = ref::values(p);
        out.insert(out.end(), v.begin(), v.end());
        rows_total += p.size(0);
      }
      return ref::make({rows_total, parts[0].size(1)}, out);
    }
    int64_t cols = 0;
    for (const Tensor& p : parts) cols += p.size(1);
    for (int64_t i = 0; i < R0; ++i)
      for (const Tensor& p : parts) {
        const auto v = ref::values(p);
        for (int64_t j = 0; j < p.size(1); ++j) out.push_back(v[i * p.size(1) + j]);
      }
    return ref::make({R0, cols}, out);
  };
  {
    Row r;
    r.op = "cat";
    r.variant = "dim0_3x4_2x4_strided";
    r.args = {Arg{.shape = {3, 4}}, Arg{.shape = {2, 4}, .strided = true}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) { return cat({in[0], in[1]}, 0); };
    r.reference = [concat](const Inputs& in) { return concat({in[0], in[1]}, 0); };
    rows.push_back(r);
    r.variant = "dim1_3x4_3x5";
    r.args = {Arg{.shape = {3, 4}}, Arg{.shape = {3, 5}}};
    r.call = [](const Inputs& in) { return cat({in[0], in[1]}, 1); };
    r.reference = [concat](const Inputs& in) { return concat({in[0], in[1]}, 1); };
    rows.push_back(r);
    r.op = "stack";
    r.variant = "dim0_3x4_3x4";
    r.args = {Arg{.shape = {3, 4}}, Arg{.shape = {3, 4}}};
    r.call = [](const Inputs& in) { return stack({in[0], in[1]}, 0); };
    r.reference = [concat](const Inputs& in) { return concat({in[0], in[1]}, 0).reshape({2, 3, 4}); };
    rows.push_back(r);
    r.op = "split";
    r.variant = "dim1_by2_reversed_3x5";
    r.args = {Arg{.shape = {3, 5}}};
    r.call = [](const Inputs& in) {
      std::vector<Tensor> p = split(in[0], 2, 1);
      return cat({p[2], p[1], p[0]}, 1);
    };
    auto reversed_blocks = [concat](const Inputs& in) {
      const auto v = ref::values(in[0]);
      auto cols = [&](int64_t a, int64_t b) {
        std::vector<double> o;
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = a; j < b; ++j) o.push_back(v[i * 5 + j]);
        return ref::make({3, b - a}, o);
      };
      return concat({cols(4, 5), cols(2, 4), cols(0, 2)}, 1);
    };
    r.reference = reversed_blocks;
    rows.push_back(r);
    r.op = "chunk";
    r.variant = "dim1_3_reversed_3x5";
    r.call = [](const Inputs& in) {
      std::vector<Tensor> p = chunk(in[0], 3, 1);
      return cat({p[2], p[1], p[0]}, 1);
    };
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
