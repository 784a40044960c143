// Op table rows: copies and casts (Tensor::to, contiguous, clone) and the joining/splitting ops
// (include/kirzl/ops/shape_ops.hpp): every floating dtype to every other and to i32, strided
// and transposed sources, a large odd size; cat, stack, split and chunk.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// Rounds a float to bfloat16 (round to nearest, ties to even; NaN stays NaN), back as a double.
double round_bf16(double x) {
  const float f = static_cast<float>(x);
  if (std::isnan(f)) return f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  bits &= 0xFFFF0000u;
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

/// x as a value of `dst` would hold it: rounded to the floating format through f32 (as kirzl's
/// casts do) or truncated toward zero for the integers.
double cast_value(double x, DType dst) {
  switch (dst) {
    case DType::f64: return x;
    case DType::f32: return static_cast<float>(x);
    case DType::bf16: return round_bf16(x);
    case DType::f16: return static_cast<float>(static_cast<_Float16>(static_cast<float>(x)));
    default: return std::trunc(x);
  }
}

const std::vector<DType> kAllDtypes = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                       DType::i32, DType::i64, DType::u8,   DType::u16};

}  // namespace

void add_copy_shape_rows(std::vector<Row>& rows) {
  // Casts from every dtype (the row's) to every other, exactly (the reference rounds
  // independently: casts are exact functions): contiguous, strided, misaligned, one large size.
  for (DType dst : kAllDtypes)
    for (const auto& [variant, arg] : {std::pair<const char*, Arg>{"odd_257", {.shape = {257}}},
                                       {"strided_5x9", {.shape = {5, 9}, .strided = true}},
                                       {"misaligned_4099", {.shape = {4099}, .misaligned = true}},
                                       {"large_1000003", {.shape = {1000003}}}}) {
      Row r;
      r.op = std::string("to_") + dtype_name(dst);
      r.variant = variant;
      r.args = {arg};
      r.args[0].lo = 0, r.args[0].hi = 50;  // fits every dtype
      r.dtypes = kAllDtypes;
      if (std::string(variant) == "large_1000003") r.dtypes = {DType::f32, DType::bf16, DType::i32};
      r.call = [dst](const Inputs& in) { return in[0].to(dst); };
      r.reference = [dst](const Inputs& in) { return ref::map(in[0], [dst](double x) { return cast_value(x, dst); }); };
      r.tol = {0, 0, 0};  // exact
      r.differentiable = is_floating(dst);
      if (dst != DType::f64)
        r.no_gradcheck = "the result is rounded to a coarser dtype than the finite differences need (to_f64 is checked)";
      rows.push_back(r);
    }
  // Narrowing casts at their rounding boundaries: halfway between two bf16 (f16) values, ties go
  // to the even one; just above halfway, up.
  for (DType dst : {DType::bf16, DType::f16, DType::f32}) {
    const double ulp = dst == DType::bf16 ? std::ldexp(1.0, -7) : dst == DType::f16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -23);
    std::vector<double> v;
    for (double base : {1.0, 1.0 + ulp, -2.0, 100.0 / 128.0})
      for (double frac : {0.5, 0.5 + 1.0 / 64, 0.25, 0.75}) v.push_back(base + frac * ulp * (base < 0 ? -2 : base < 1 ? 0.5 : 1));
    Row r;
    r.op = std::string("to_") + dtype_name(dst);
    r.variant = "rounding_halfway_16";
    r.args = {Arg{.shape = {16}, .values = v}};
    r.dtypes = dst == DType::f32 ? std::vector<DType>{DType::f64} : std::vector<DType>{DType::f32, DType::f64};
    r.call = [dst](const Inputs& in) { return in[0].to(dst); };
    r.reference = [dst](const Inputs& in) { return ref::map(in[0], [dst](double x) { return cast_value(x, dst); }); };
    r.tol = {0, 0, 0};
    r.no_gradcheck = "the result is rounded to a coarser dtype than the finite differences need (to_f64 is checked)";
    rows.push_back(r);
  }
  // Views made contiguous (contiguous, clone, and a cast on the way) on a 4-D tensor.
  struct View {
    const char* name;
    Tensor (*make)(const Tensor&);
  };
  const View views[] = {
      {"transpose_1_3", [](const Tensor& x) { return x.transpose(1, 3); }},
      {"permute_3021", [](const Tensor& x) { return x.permute({3, 0, 2, 1}); }},
      {"slice_step3", [](const Tensor& x) { return x.slice(2, 1, 9, 3); }},
      {"select_slice", [](const Tensor& x) { return x.select(1, 4).slice(0, 1, 5, 2); }},
      {"narrow", [](const Tensor& x) { return x.narrow(3, 1, 10); }},
      {"expand", [](const Tensor& x) { return x.slice(0, 0, 1).expand({4, 7, 9, 11}); }},
  };
  for (const View& view : views)
    for (const char* how : {"contiguous", "clone", "to_f32"}) {
      Row r;
      r.op = std::string("view_") + how;
      r.variant = std::string(view.name) + "_5x7x9x11";
      r.args = {Arg{.shape = {5, 7, 9, 11}, .lo = 0, .hi = 50}};
      r.dtypes = {DType::f32, DType::bf16, DType::i64, DType::u8};
      auto make = view.make;
      const std::string h = how;
      r.call = [make, h](const Inputs& in) {
        Tensor v = make(in[0]);
        Tensor y = h == "contiguous" ? v.contiguous() : h == "clone" ? v.clone() : v.to(DType::f32);
        if (h == "contiguous") {
          EXPECT_TRUE(y.is_contiguous()) << v.describe();
        }
        return y;
      };
      r.reference = [make](const Inputs& in) {
        const Tensor v = make(in[0].to(DType::f64));  // the same view of an f64 copy
        return ref::make(v.shape(), ref::strided_values(v));
      };
      r.tol = {0, 0, 0};
      r.no_gradcheck = "a copy: its gradient is the identity (gradchecked in the contiguous rows)";
      rows.push_back(r);
    }
  // copy_ into views of a destination: broadcast [1, 5] into every other column, with a cast to
  // f32; a transposed source; fill_ of strided views, and of a misaligned large one.
  {
    Row r;
    r.op = "copy_into";
    r.variant = "stepped_broadcast_6x10";
    r.args = {Arg{.shape = {1, 5}}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) {
      NoGradGuard no_grad;
      Tensor dst = full({6, 10}, 3.0, {.dtype = DType::f32, .device = in[0].device()});
      dst.slice(1, 0, 10, 2).copy_(in[0]);
      return dst;
    };
    r.reference = [](const Inputs& in) {
      const std::vector<double> s = ref::values(in[0]);
      std::vector<double> out(60, 3.0);
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = 0; j < 5; ++j) out[i * 10 + 2 * j] = static_cast<float>(s[j]);
      return ref::make({6, 10}, out);
    };
    r.tol = {0, 0, 0};
    r.differentiable = false;
    rows.push_back(r);
    r.variant = "transposed_source_4x3";
    r.args = {Arg{.shape = {3, 4}}};
    r.call = [](const Inputs& in) {
      NoGradGuard no_grad;
      Tensor dst = zeros({4, 3}, {.dtype = DType::f32, .device = in[0].device()});
      dst.copy_(in[0].t());
      return dst;
    };
    r.reference = [](const Inputs& in) {
      const std::vector<double> s = ref::values(in[0]);
      std::vector<double> out;
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 3; ++j) out.push_back(static_cast<float>(s[j * 4 + i]));
      return ref::make({4, 3}, out);
    };
    rows.push_back(r);
  }
  {
    Row r;
    r.op = "fill_";
    r.variant = "strided_9x13";
    r.args = {Arg{.shape = {9, 13}, .lo = 0, .hi = 50}};
    r.dtypes = kAllDtypes;
    r.call = [](const Inputs& in) {
      Tensor t = in[0].detach().clone();
      t.slice(1, 1, 13, 3).fill_(5.0);
      t.t().slice(0, 2, 4).fill_(7.0);
      return t;
    };
    r.reference = [](const Inputs& in) {
      std::vector<double> v = ref::values(in[0]);
      for (int64_t i = 0; i < 9; ++i)
        for (int64_t j = 0; j < 13; ++j) {
          if (j >= 1 && (j - 1) % 3 == 0) v[i * 13 + j] = 5;
          if (j == 2 || j == 3) v[i * 13 + j] = 7;
        }
      return ref::make({9, 13}, v);
    };
    r.tol = {0, 0, 0};
    r.differentiable = false;
    rows.push_back(r);
    r.variant = "misaligned_1000003";
    r.args = {Arg{.shape = {1000003}, .lo = 0, .hi = 50}};
    r.call = [](const Inputs& in) {
      Tensor t = in[0].detach().clone();
      t.narrow(0, 1, 1000001).fill_(2.0);  // starts one element in: not 16-byte aligned
      return t;
    };
    r.reference = [](const Inputs& in) {
      std::vector<double> v = ref::values(in[0]);
      for (size_t i = 1; i + 1 < v.size(); ++i) v[i] = 2;
      return ref::make({1000003}, v);
    };
    rows.push_back(r);
  }
  // Factories on the device of the (otherwise unused) input, in its dtype.
  {
    Row r;
    r.op = "factories";
    r.variant = "zeros_ones_full_arange";
    r.args = {Arg{.shape = {1}}};
    r.dtypes = {DType::f32, DType::bf16, DType::f64};
    r.call = [](const Inputs& in) {
      const TensorOptions o{.dtype = in[0].dtype(), .device = in[0].device()};
      return cat({zeros({15}, o), ones({4099}, o), full({7}, 2.5, o), arange(0.0, 10.0, 0.5, o),
                  from_vector<float>({1, 2, 3}, {3}, o), scalar_tensor(4.0, o).reshape({1})});
    };
    r.reference = [](const Inputs&) {
      std::vector<double> v(15, 0.0);
      v.insert(v.end(), 4099, 1.0);
      v.insert(v.end(), 7, 2.5);
      for (int i = 0; i < 20; ++i) v.push_back(0.5 * i);
      for (double e : {1.0, 2.0, 3.0, 4.0}) v.push_back(e);
      return ref::make({int64_t(v.size())}, v);
    };
    r.tol = {0, 0, 0};
    r.differentiable = false;
    rows.push_back(r);
    // Random factories: the stream depends only on the seed and the draws, so CUDA must give the
    // CPU's values exactly; the cpu case checks their range.
    Row g;
    g.op = "factories";
    g.variant = "rand_randn_randint_seeded";
    g.args = {Arg{.shape = {1}}};
    g.dtypes = {DType::f32, DType::bf16, DType::f64};
    g.call = [](const Inputs& in) {
      const TensorOptions o{.dtype = in[0].dtype(), .device = in[0].device()};
      Generator gen(5);
      Tensor u = rand({257}, o, &gen), n = randn({257}, o, &gen);
      Tensor i = randint(-5, 5, {100}, {.dtype = DType::i64, .device = in[0].device()}, &gen).to(in[0].dtype());
      return cat({u, n, i});
    };
    g.check = [](const Inputs&, const Tensor& y) -> std::string {
      const std::vector<double> v = ref::values(y);
      for (size_t k = 0; k < 257; ++k)
        if (!(v[k] >= 0 && v[k] <= 1)) return "rand gave " + std::to_string(v[k]) + " at " + std::to_string(k);
      for (size_t k = 514; k < v.size(); ++k)
        if (!(v[k] >= -5 && v[k] < 5 && v[k] == std::trunc(v[k]))) return "randint gave " + std::to_string(v[k]);
      return "";
    };
    g.tol = {0, 0, 0};
    g.differentiable = false;
    rows.push_back(g);
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
