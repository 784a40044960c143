// Causal multi-head self-attention as a module (the attention block of GPT-2).
#pragma once

#include <cstdint>
#include <memory>

#include "kirzl/nn/layers.hpp"

namespace kirzl::nn {

/// Options of CausalSelfAttention: `{.bias = false, .dropout = 0.1}`.
struct CausalSelfAttentionOptions {
  bool bias = true;      ///< biases on the qkv and output projections
  double dropout = 0.0;  ///< dropout on the output projection while training (residual dropout)
};

/// y = c_proj(causal_attention(q, k, v)) with q, k, v = split(c_attn(x)) into `n_head` heads:
/// x [B, T, C] -> y [B, T, C]. Submodules are named as in GPT-2 ("c_attn": C -> 3C in the order
/// q, k, v; "c_proj": C -> C), so state_dict keys are "c_attn.weight", "c_proj.bias", ...
/// (stored as Linear's [out, in]). Initialised like Linear; models re-initialise as they need.
///
/// Attention-probability dropout is not applied (the attention op has none); `dropout` acts on the
/// projected output only. Not thread-safe (a Module).
class CausalSelfAttention : public Module {
 public:
  /// Throws Error{InvalidArgument} unless n_embd > 0, n_head > 0 and n_embd % n_head == 0.
  CausalSelfAttention(int64_t n_embd, int64_t n_head, const CausalSelfAttentionOptions& options = {});
  /// x must be [B, T, n_embd] of a floating dtype; T may be anything (no block_size here).
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;

  /// The fused query/key/value projection, C -> 3C: output columns [0, C) are q, [C, 2C) k,
  /// [2C, 3C) v, each split into n_head heads of C / n_head channels.
  std::shared_ptr<Linear> c_attn;
  /// The output projection, C -> C, applied to the heads concatenated back to [B, T, C].
  std::shared_ptr<Linear> c_proj;
  /// C: the input and output width (the constructor's argument).
  int64_t n_embd;
  /// Number of heads; each attends over n_embd / n_head channels.
  int64_t n_head;
  /// The options given at construction (dropout is read at each forward()).
  CausalSelfAttentionOptions options;
};

}  // namespace kirzl::nn
