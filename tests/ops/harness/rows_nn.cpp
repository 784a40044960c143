// Op table rows: softmax and log_softmax, layer_norm, batch_norm, embedding and dropout
// (include/kirzl/ops/nn.hpp). Layer-norm widths include the CUDA register path's boundaries
// (Note [layer norm on CUDA]) and a row too long for it.
#include <cmath>
#include <sstream>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

std::vector<double> softmax_line(const std::vector<double>& v, bool log) {
  double m = -INFINITY;
  for (double e : v) m = std::max(m, e);
  double s = 0;
  for (double e : v) s += std::exp(e - m);
  std::vector<double> r;
  for (double e : v) r.push_back(log ? e - m - std::log(s) : std::exp(e - m) / s);
  return r;
}

/// Layer norm over rows of n trailing elements; w/b undefined: no affine.
Tensor ref_layer_norm(const Tensor& x, int64_t n, const Tensor& w, const Tensor& b, double eps) {
  std::vector<double> v = ref::values(x), wv, bv;
  if (w.defined()) wv = ref::values(w);
  if (b.defined()) bv = ref::values(b);
  for (size_t r = 0; n > 0 && r < v.size() / n; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < n; ++j) mu += v[r * n + j];
    mu /= double(n);
    for (int64_t j = 0; j < n; ++j) var += (v[r * n + j] - mu) * (v[r * n + j] - mu);
    var /= double(n);
    for (int64_t j = 0; j < n; ++j) {
      double y = (v[r * n + j] - mu) / std::sqrt(var + eps);
      v[r * n + j] = (wv.empty() ? y : y * wv[j]) + (bv.empty() ? 0 : bv[j]);
    }
  }
  return ref::make(x.shape(), v);
}

/// Batch norm of x [N, C, ...] with per-channel statistics (batch: biased variance; or given).
Tensor ref_batch_norm(const Tensor& x, const Tensor& mean_in, const Tensor& var_in, const Tensor& w, const Tensor& b,
                      double eps) {
  const Shape& s = x.shape();
  const int64_t N = s[0], C = s[1], inner = ref::numel_of(s) / std::max<int64_t>(N * C, 1);
  std::vector<double> v = ref::values(x), wv = ref::values(w), bv = ref::values(b);
  for (int64_t c = 0; c < C; ++c) {
    double mu = 0, var = 0;
    if (mean_in.defined()) {
      mu = ref::values(mean_in)[c], var = ref::values(var_in)[c];
    } else {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < inner; ++i) mu += v[(n * C + c) * inner + i];
      mu /= double(N * inner);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < inner; ++i) var += std::pow(v[(n * C + c) * inner + i] - mu, 2);
      var /= double(N * inner);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        double& e = v[(n * C + c) * inner + i];
        e = (e - mu) / std::sqrt(var + eps) * wv[c] + bv[c];
      }
  }
  return ref::make(s, v);
}

}  // namespace

void add_nn_rows(std::vector<Row>& rows) {
  // softmax / log_softmax along a dim.
  struct Sm {
    const char* variant;
    Arg x;
    int64_t dim;
  };
  const Sm sms[] = {
      {"last_3x7x5", {.shape = {3, 7, 5}}, -1},
      {"dim0_3x7x5", {.shape = {3, 7, 5}}, 0},
      {"strided_5x9", {.shape = {5, 9}, .strided = true}, -1},
      {"width1_4x1", {.shape = {4, 1}}, -1},
      {"wide_3x4097", {.shape = {3, 4097}, .lo = -8, .hi = 8}, -1},
      {"rows_1000x257", {.shape = {1000, 257}}, -1},
      {"specials_2x7", {.shape = {2, 7}, .specials = true}, -1},
      // Row 0 all -inf (a NaN row), row 1 partly -inf (zero probabilities), row 2 with a NaN.
      {"infinities_3x4",
       {.shape = {3, 4}, .values = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 1, -INFINITY, 2, 3, 4, NAN, 5, 6}},
       -1},
      {"rows_64x5000", {.shape = {64, 5000}}, -1},
  };
  for (bool log : {false, true})
    for (const Sm& s : sms) {
      Row r;
      r.op = log ? "log_softmax" : "softmax";
      r.variant = s.variant;
      r.args = {s.x};
      r.dtypes = float_dtypes();
      const int64_t dim = s.dim;
      r.call = [dim, log](const Inputs& in) { return log ? log_softmax(in[0], dim) : softmax(in[0], dim); };
      r.reference = [dim, log](const Inputs& in) {
        return ref::along(in[0], dim, [log](const std::vector<double>& v) { return softmax_line(v, log); });
      };
      r.tol.reference = r.tol.cuda = 10;
      if (s.x.specials || !s.x.values.empty()) r.no_gradcheck = "NaN and infinities have no finite differences";
      r.deterministic = true;
      rows.push_back(r);
    }

  // layer_norm over the last dim (and the last two), affine or not; x in [2, 4) checks that the
  // statistics are computed in two passes (a large mean).
  struct Ln {
    const char* variant;
    Shape x;
    int64_t n;  // trailing elements normalised
    bool affine, strided;
  };
  const Ln lns[] = {
      {"affine_3x7x5", {3, 7, 5}, 5, true, false},
      {"affine_last2_3x7x5", {3, 7, 5}, 35, true, false},
      {"plain_3x7x5", {3, 7, 5}, 5, false, false},
      {"strided_5x9", {5, 9}, 9, true, true},
      {"width1_4x1", {4, 1}, 1, true, false},
      {"odd_3x4097", {3, 4097}, 4097, true, false},
      {"boundary_5x1032", {5, 1032}, 1032, true, false},
      {"boundary_5x2056", {5, 2056}, 2056, true, false},
      {"rows_300x768", {300, 768}, 768, true, false},
      {"block_path_3x10000", {3, 10000}, 10000, true, false},
  };
  for (const Ln& l : lns) {
    Row r;
    r.op = "layer_norm";
    r.variant = l.variant;
    const Shape norm = l.n == 35 ? Shape{7, 5} : Shape{l.n};
    r.args = {Arg{.shape = l.x, .lo = 2, .hi = 4, .strided = l.strided}};
    if (l.affine) r.args.push_back(Arg{.shape = norm, .lo = 0.5, .hi = 1.5}), r.args.push_back(Arg{.shape = norm, .lo = -1, .hi = 1});
    r.dtypes = float_dtypes();
    r.call = [norm](const Inputs& in) {
      return in.size() > 1 ? layer_norm(in[0], norm, in[1], in[2]) : layer_norm(in[0], norm);
    };
    const int64_t n = l.n;
    r.reference = [n](const Inputs& in) {
      return in.size() > 1 ? ref_layer_norm(in[0], n, in[1], in[2], 1e-5) : ref_layer_norm(in[0], n, Tensor(), Tensor(), 1e-5);
    };
    r.tol.reference = 20;  // the statistics in f32
    r.tol.cuda = 100;      // gradients: sums over up to 10^4 terms in another order
    r.tol.low_precision = 2;
    // rstd = 1/sqrt(var + eps) with var ~ 0.3 and x ~ 3: finite differences need a looser rtol.
    r.gradcheck_rtol = 1e-3;
    r.deterministic = true;
    rows.push_back(r);
  }
  // Note [layer norm on CUDA]: rows of up to 32 K 16-byte packs per warp take the register path,
  // longer or unaligned ones the block path; the backward keeps a row in shared memory up to a
  // size. Widths at each boundary and the next pack, per dtype (the pack holds 8 bf16/f16, 4 f32,
  // 2 f64), 300 rows (several per warp, several blocks of partial sums), and misaligned x.
  struct Boundary {
    DType dt;
    std::vector<int64_t> widths;
    int64_t rows;
  };
  const Boundary boundaries[] = {{DType::bf16, {8, 776, 1024, 1032, 2048, 2056}, 300},
                                 {DType::f16, {1024, 1032, 2048, 2056}, 300},
                                 {DType::f32, {4, 132, 768, 772, 1024, 1028}, 300},
                                 {DType::f64, {2, 384, 386, 512, 514}, 300},
                                 {DType::f32, {6128, 6129, 6136, 6144, 6145}, 40},
                                 {DType::bf16, {6129, 6144}, 40},
                                 {DType::f16, {6129, 6144}, 40},
                                 {DType::f64, {3056, 3057, 3064, 3072, 3073}, 40}};
  for (const Boundary& b : boundaries)
    for (int64_t n : b.widths)
      for (bool misaligned : {false, true}) {
        if (misaligned && b.rows != 300) continue;
        Row r;
        r.op = "layer_norm";
        r.variant = std::string(misaligned ? "misaligned_" : "boundary_") + std::to_string(b.rows) + "x" + std::to_string(n);
        r.args = {Arg{.shape = {b.rows, n}, .lo = 2, .hi = 4, .misaligned = misaligned}, Arg{.shape = {n}, .lo = 0.5, .hi = 1.5},
                  Arg{.shape = {n}, .lo = -1, .hi = 1}};
        r.dtypes = {b.dt};
        r.call = [n](const Inputs& in) { return layer_norm(in[0], {n}, in[1], in[2]); };
        r.reference = [n](const Inputs& in) { return ref_layer_norm(in[0], n, in[1], in[2], 1e-5); };
        r.tol = {20, 100, 2};
        r.gradcheck_rtol = 1e-3;
        rows.push_back(r);
      }
  // Only some gradients wanted: the backward kernels skip the others (and must not need them).
  for (const auto& [variant, gx, gw, gb] : {std::tuple<const char*, bool, bool, bool>{"grad_w_only_40x768", false, true, false},
                                            {"grad_x_only_40x768", true, false, false},
                                            {"grad_x_b_40x768", true, false, true}}) {
    Row r;
    r.op = "layer_norm";
    r.variant = variant;
    r.args = {Arg{.shape = {40, 768}, .grad = gx}, Arg{.shape = {768}, .lo = 0.5, .hi = 1.5, .grad = gw},
              Arg{.shape = {768}, .lo = -1, .hi = 1, .grad = gb}};
    r.dtypes = {DType::f32, DType::bf16};
    r.call = [](const Inputs& in) { return layer_norm(in[0], {768}, in[1], in[2]); };
    r.reference = [](const Inputs& in) { return ref_layer_norm(in[0], 768, in[1], in[2], 1e-5); };
    r.tol = {20, 100, 2};
    rows.push_back(r);
  }

  // batch_norm: training (batch statistics, no running statistics) and eval (given statistics,
  // which are not differentiable inputs).
  for (const auto& [variant, shape, strided] :
       {std::tuple<const char*, Shape, bool>{"odd_4x3x5x2", {4, 3, 5, 2}, false}, {"2d_6x5", {6, 5}, false},
        {"strided_4x5", {4, 5}, true}, {"channels_3x257x1x3", {3, 257, 1, 3}, false},
        {"channels_64x16x8x8", {64, 16, 8, 8}, false}, {"ones_17x4x1x1", {17, 4, 1, 1}, false}, {"million_per_channel_1x3x1000003", {1, 3, 1000003}, false}}) {
    const int64_t C = shape[1];
    for (bool training : {true, false}) {
      Row r;
      r.op = training ? "batch_norm_train" : "batch_norm_eval";
      r.variant = variant;
      r.args = {Arg{.shape = shape, .strided = strided}, Arg{.shape = {C}, .lo = 0.5, .hi = 1.5}, Arg{.shape = {C}, .lo = -1, .hi = 1}};
      if (!training)
        r.args.push_back(Arg{.shape = {C}, .lo = -0.5, .hi = 0.5, .grad = false}),
            r.args.push_back(Arg{.shape = {C}, .lo = 0.5, .hi = 1.5, .grad = false});
      r.dtypes = float_dtypes();
      r.call = [training](const Inputs& in) {
        return training ? batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true)
                        : batch_norm(in[0], in[3], in[4], in[1], in[2], false);
      };
      r.reference = [training](const Inputs& in) {
        return training ? ref_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 1e-5)
                        : ref_batch_norm(in[0], in[3], in[4], in[1], in[2], 1e-5);
      };
      r.tol.reference = r.tol.cuda = 20;
      r.tol.low_precision = 2;
      r.gradcheck_rtol = 1e-3;
      r.deterministic = true;
      rows.push_back(r);
    }
  }

  // The public op with running statistics (updated in place, returned after y) and f32
  // parameters for every dtype of x, as BatchNorm2d keeps them; and subsets of the gradients.
  for (bool training : {true, false}) {
    Row r;
    r.op = training ? "batch_norm_train" : "batch_norm_eval";
    r.variant = "running_stats_f32_params_6x5x7x3";
    const Arg param{.shape = {5}, .lo = 0.5, .hi = 1.5, .dtype = DType::f32};
    r.args = {Arg{.shape = {6, 5, 7, 3}, .lo = -2, .hi = 4}, param, Arg{.shape = {5}, .lo = -1, .hi = 1, .dtype = DType::f32},
              Arg{.shape = {5}, .lo = -0.5, .hi = 0.5, .dtype = DType::f32, .grad = false}, Arg{.shape = {5}, .lo = 0.5, .hi = 1.5, .dtype = DType::f32, .grad = false}};
    r.dtypes = {DType::f32, DType::bf16, DType::f64};
    r.call = [training](const Inputs& in) {
      Tensor rm = in[3].detach().clone(), rv = in[4].detach().clone();  // a fresh copy per call
      Tensor y = batch_norm(in[0], rm, rv, in[1], in[2], training, 0.1, 1e-5);
      return cat({y.reshape({-1}), rm.to(y.dtype()), rv.to(y.dtype())});
    };
    r.reference = [training](const Inputs& in) {
      const Tensor y = training ? ref_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 1e-5)
                                : ref_batch_norm(in[0], in[3], in[4], in[1], in[2], 1e-5);
      std::vector<double> out = ref::values(y), rm = ref::values(in[3]), rv = ref::values(in[4]);
      if (training) {
        const std::vector<double> x = ref::values(in[0]);
        const int64_t N = 6, C = 5, inner = 21;
        for (int64_t c = 0; c < C; ++c) {
          double mu = 0, var = 0;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < inner; ++i) mu += x[(n * C + c) * inner + i];
          mu /= double(N * inner);
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < inner; ++i) var += std::pow(x[(n * C + c) * inner + i] - mu, 2);
          var /= double(N * inner - 1);  // unbiased for the running variance
          rm[c] = 0.9 * rm[c] + 0.1 * mu;
          rv[c] = 0.9 * rv[c] + 0.1 * var;
        }
      }
      out.insert(out.end(), rm.begin(), rm.end());
      out.insert(out.end(), rv.begin(), rv.end());
      return ref::make({int64_t(out.size())}, out);
    };
    r.tol = {20, 20, 2};
    r.gradcheck_rtol = 1e-3;
    rows.push_back(r);
    // Only some gradients wanted (x alone; weight and bias alone).
    for (bool want_x : {true, false}) {
      Row g;
      g.op = r.op;
      g.variant = want_x ? "grad_x_only_4x3x5x2" : "grad_w_b_only_4x3x5x2";
      g.args = {Arg{.shape = {4, 3, 5, 2}, .grad = want_x}, Arg{.shape = {3}, .lo = 0.5, .hi = 1.5, .grad = !want_x},
                Arg{.shape = {3}, .lo = -1, .hi = 1, .grad = !want_x}, Arg{.shape = {3}, .lo = -0.5, .hi = 0.5, .grad = false},
                Arg{.shape = {3}, .lo = 0.5, .hi = 1.5, .grad = false}};
      g.dtypes = {DType::f32, DType::bf16};
      g.call = [training](const Inputs& in) {
        return training ? batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true)
                        : batch_norm(in[0], in[3], in[4], in[1], in[2], false);
      };
      g.reference = [training](const Inputs& in) {
        return training ? ref_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 1e-5)
                        : ref_batch_norm(in[0], in[3], in[4], in[1], in[2], 1e-5);
      };
      g.tol = {20, 20, 2};
      g.gradcheck_rtol = 1e-3;
      rows.push_back(g);
    }
  }

  // embedding: rows of weight picked by indices (repeated indices accumulate in the backward).
  for (const auto& [variant, num, dim, idx, idt] :
       {std::tuple<const char*, int64_t, int64_t, Shape, DType>{"odd_10x4_3x5", 10, 4, {3, 5}, DType::i64},
        {"i32_10x4_17", 10, 4, {17}, DType::i32},
        {"large_1000x64_4096", 1000, 64, {4096}, DType::i64},
        {"empty_10x4_0", 10, 4, {0}, DType::i64},
        // ~1000 gradient rows summed into each of 4 rows: a bf16 accumulator would lose them.
        {"many_repeats_4x8_4096", 4, 8, {4096}, DType::i64}}) {
    Row r;
    r.op = "embedding";
    r.variant = variant;
    r.args = {Arg{.shape = {num, dim}}, Arg{.shape = idx, .lo = 0, .hi = double(num), .dtype = idt}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) { return embedding(in[0], in[1]); };
    const int64_t d = dim;
    r.reference = [d](const Inputs& in) {
      const std::vector<double> w = ref::values(in[0]), ix = ref::values(in[1]);
      std::vector<double> out;
      for (double i : ix)
        for (int64_t j = 0; j < d; ++j) out.push_back(w[int64_t(i) * d + j]);
      std::vector<int64_t> s(in[1].shape().begin(), in[1].shape().end());
      s.push_back(d);
      return ref::make(Shape(s), out);
    };
    r.tol.cuda = 10;  // the weight gradient sums repeated rows
    r.deterministic = true;
    rows.push_back(r);
  }
  // Note [embedding backward order]: the CUDA backward adds the gradient rows of each weight row
  // in the CPU's order, so f32/f64 gradients equal the CPU's exactly; rows of 1, 3 and 13
  // elements (narrow copies) and 768, 1000; ~700 repeats of each of the first 7 rows.
  for (int64_t dim : {1, 3, 13, 768, 1000})
    for (DType idt : {DType::i32, DType::i64}) {
      Row r;
      r.op = "embedding";
      r.variant = std::string("repeats_exact_") + dtype_name(idt) + "_50x" + std::to_string(dim) + "_5000";
      r.args = {Arg{.shape = {50, dim}}, Arg{.shape = {5000}, .lo = 0, .hi = 7, .dtype = idt}};
      r.dtypes = {DType::f32, DType::bf16};
      r.call = [](const Inputs& in) { return embedding(in[0], in[1]); };
      r.reference = [dim](const Inputs& in) {
        const std::vector<double> w = ref::values(in[0]), ix = ref::values(in[1]);
        std::vector<double> out;
        for (double i : ix)
          for (int64_t j = 0; j < dim; ++j) out.push_back(w[int64_t(i) * dim + j]);
        return ref::make({int64_t(ix.size()), dim}, out);
      };
      r.tol = {1, 0, 1};  // f32: exact on CUDA
      r.deterministic = true;
      rows.push_back(r);
    }

  // dropout, seeded: the mask is a function of the seed and the position only (identical on
  // every device), so the cuda case compares exactly; the cpu case checks the op's definition.
  for (const auto& [variant, shape, strided] :
       {std::tuple<const char*, Shape, bool>{"odd_17x33", {17, 33}, false}, {"strided_5x9", {5, 9}, true},
        {"large_1000003", {1000003}, false}, {"one_1", {1}, false}, {"three_3", {3}, false}, {"four_4", {4}, false},
        {"five_5", {5}, false}, {"counter_wrap_4099", {4099}, false}}) {
    Row r;
    r.op = "dropout";
    r.variant = variant;
    r.args = {Arg{.shape = shape, .lo = 0.5, .hi = 2, .strided = strided}};
    r.dtypes = float_dtypes();
    constexpr double p = 0.3;
    // counter_wrap: Philox counters cross 2^32 inside the call (the high counter word must be
    // carried the same way on every device).
    const uint64_t offset = std::string(variant) == "counter_wrap_4099" ? (uint64_t{1} << 32) - 500 : 0;
    r.call = [offset](const Inputs& in) {
      Generator gen(2024);
      gen.set_offset(offset);
      return dropout(in[0], p, true, &gen);
    };
    r.deterministic = true;
    r.check = [](const Inputs& in, const Tensor& y) -> std::string {
      const std::vector<double> x = ref::values(in[0]), v = ref::values(y);
      int64_t zeros = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        const double kept = x[i] / (1 - p);
        if (v[i] == 0) ++zeros;
        else if (!(std::abs(v[i] - kept) <= 1e-2 * std::abs(kept))) {
          std::ostringstream os;
          os << "element " << i << " is " << v[i] << ", neither 0 nor x / (1 - p) = " << kept;
          return os.str();
        }
      }
      const double n = double(v.size()), frac = zeros / n;
      if (n >= 100 && std::abs(frac - p) > 5 * std::sqrt(p * (1 - p) / n))
        return "dropped fraction " + std::to_string(frac) + ", expected about " + std::to_string(p);
      return "";
    };
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
