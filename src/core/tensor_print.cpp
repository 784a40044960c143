// numpy-like printing: tensor([[ 1.0000, -2.5000], [ 0.0000,  3.0000]], f32, cpu)
#include <cmath>
#include <cstdio>
#include <ostream>

#include "kernels/dispatch.h"
#include "kirzl/autograd.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace {

constexpr int64_t kSummarizeAbove = 1000;  // elements; larger tensors show only their edges
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, bool floating, bool scientific) {
  char buf[64];
  if (!floating) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else if (std::isnan(v)) std::snprintf(buf, sizeof buf, "nan");
  else if (std::isinf(v)) std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
  else if (scientific) std::snprintf(buf, sizeof buf, "%.4e", v);
  else std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

void print_rec(std::string& out, const Tensor& t, int64_t d, int64_t base, const std::vector<double>& flat,
               const Shape& strides, bool summarize, size_t width, bool floating, bool scientific, int indent) {
  if (d == t.dim()) {
    std::string s = format_value(flat[base], floating, scientific);
    out += std::string(width > s.size() ? width - s.size() : 0, ' ') + s;
    return;
  }
  out += "[";
  int64_t n = t.size(d);
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      out += d + 1 == t.dim() ? "..., " : "...,\n" + std::string(indent + d + 1, ' ');
      i = n - kEdgeItems;
    }
    print_rec(out, t, d + 1, base + i * strides[d], flat, strides, summarize, width, floating, scientific, indent);
    if (i + 1 < n) {
      out += ",";
      if (d + 1 == t.dim()) out += " ";
      else out += std::string(t.dim() - d - 1, '\n') + std::string(indent + d + 1, ' ');
    }
  }
  out += "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  Tensor c = detach();
  if (!c.device().is_cpu()) c = c.contiguous().to(Device::cpu());
  std::vector<double> flat = c.to_vector<double>();
  const bool floating = is_floating(dtype());
  bool scientific = false;
  if (floating) {
    double mx = 0, mn = INFINITY;
    for (double v : flat)
      if (std::isfinite(v) && v != 0) {
        mx = std::max(mx, std::abs(v));
        mn = std::min(mn, std::abs(v));
      }
    scientific = mx >= 1e8 || (mn < 1e-4 && mn > 0);
  }
  size_t width = 1;
  for (double v : flat) width = std::max(width, format_value(v, floating, scientific).size());
  std::string body;
  const int indent = 7;  // strlen("tensor(")
  print_rec(body, c, 0, 0, flat, contiguous_strides(shape()), numel() > kSummarizeAbove, width, floating, scientific, indent);
  std::string out = "tensor(" + body + ", " + dtype_name(dtype()) + ", " + device().str();
  if (auto fn = grad_fn()) out += ", grad_fn=" + fn->name();
  else if (requires_grad()) out += ", requires_grad";
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace kirzl
