// nn::CausalSelfAttention.
#include "kirzl/nn/attention.hpp"

#include "kirzl/ops/nn.hpp"

namespace kirzl::nn {

CausalSelfAttention::CausalSelfAttention(int64_t n_embd, int64_t n_head, const CausalSelfAttentionOptions& options)
    : n_embd(n_embd), n_head(n_head), options(options) {
  KIRZL_CHECK(n_embd > 0 && n_head > 0 && n_embd % n_head == 0,
              "CausalSelfAttention: n_embd must be a positive multiple of n_head, got n_embd = ", n_embd,
              ", n_head = ", n_head);
  KIRZL_CHECK(options.dropout >= 0 && options.dropout < 1, "CausalSelfAttention: dropout must be in [0, 1), got ",
              options.dropout);
  c_attn = register_module("c_attn", as_module(Linear(n_embd, 3 * n_embd, {.bias = options.bias})));
  c_proj = register_module("c_proj", as_module(Linear(n_embd, n_embd, {.bias = options.bias})));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  KIRZL_CHECK(x.defined() && x.dim() == 3 && x.size(2) == n_embd, "CausalSelfAttention: expected x [B, T, ", n_embd,
              "], got ", x.defined() ? x.describe() : std::string("an undefined tensor"));
  // [B, T, 3C] -> [B, T, C]: the op reads q, k, v in place and gives one d(qkv) in backward.
  Tensor y = causal_attention_qkv((*c_attn)(x), n_head);
  return dropout((*c_proj)(y), options.dropout, is_training());
}

std::string CausalSelfAttention::repr() const {
  return detail::str_cat("CausalSelfAttention(n_embd=", n_embd, ", n_head=", n_head,
                         ", bias=", options.bias ? "true" : "false", ", dropout=", options.dropout, ")");
}

}  // namespace kirzl::nn
