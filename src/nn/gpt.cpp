// models::GPTConfig and models::GPT.
#include "kirzl/models/gpt.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "kirzl/autograd.hpp"
#include "kirzl/nn/init.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/fused.hpp"
#include "kirzl/ops/linalg.hpp"
#include "kirzl/ops/nn.hpp"
#include "kirzl/ops/reduce.hpp"

namespace kirzl::models {

// ---- GPTConfig ----

GPTConfig GPTConfig::preset(const std::string& name) {
  if (name == "124m" || name == "gpt2") return gpt2_124m();
  if (name == "350m" || name == "gpt2-medium") return gpt2_350m();
  if (name == "774m" || name == "gpt2-large") return gpt2_774m();
  if (name == "1558m" || name == "1.5b" || name == "gpt2-xl") return gpt2_1558m();
  if (name == "tiny") return tiny();
  KIRZL_FAIL(ErrorCode::InvalidArgument, "GPTConfig::preset: unknown preset '", name,
             "' (expected 124m, 350m, 774m, 1558m, gpt2, gpt2-medium, gpt2-large, gpt2-xl or tiny)");
}

int64_t GPTConfig::padded_vocab_size() const {
  KIRZL_CHECK(vocab_padding > 0, "GPTConfig: vocab_padding must be positive, got ", vocab_padding);
  return (vocab_size + vocab_padding - 1) / vocab_padding * vocab_padding;
}

void GPTConfig::validate() const {
  auto positive = [&](const char* field, int64_t v) {
    KIRZL_CHECK(v > 0, "GPTConfig: ", field, " must be positive, got ", v, " in ", str());
  };
  positive("vocab_size", vocab_size);
  positive("block_size", block_size);
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_embd", n_embd);
  positive("vocab_padding", vocab_padding);
  KIRZL_CHECK(n_embd % n_head == 0, "GPTConfig: n_embd (", n_embd, ") must be divisible by n_head (", n_head, ") in ",
              str());
  KIRZL_CHECK(dropout >= 0 && dropout < 1, "GPTConfig: dropout must be in [0, 1), got ", dropout);
}

int64_t GPTConfig::num_parameters() const {
  const int64_t C = n_embd;
  const int64_t per_block = 12 * C * C + 4 * C + (bias ? 9 * C : 0);
  return vocab_size * C + block_size * C + n_layer * per_block + 2 * C;
}

std::string GPTConfig::str() const {
  std::ostringstream s;
  s << "GPTConfig(vocab_size=" << vocab_size << ", block_size=" << block_size << ", n_layer=" << n_layer
    << ", n_head=" << n_head << ", n_embd=" << n_embd << ", dropout=" << dropout << ", bias=" << (bias ? "true" : "false")
    << ", vocab_padding=" << vocab_padding << ")";
  return s.str();
}

std::map<std::string, std::string> GPTConfig::to_map() const {
  std::ostringstream d;
  d.precision(17);
  d << dropout;
  return {{"vocab_size", std::to_string(vocab_size)}, {"block_size", std::to_string(block_size)},
          {"n_layer", std::to_string(n_layer)},       {"n_head", std::to_string(n_head)},
          {"n_embd", std::to_string(n_embd)},         {"dropout", d.str()},
          {"bias", bias ? "1" : "0"},                 {"vocab_padding", std::to_string(vocab_padding)}};
}

GPTConfig GPTConfig::from_map(const std::map<std::string, std::string>& m, const std::string& prefix) {
  return from_map(m, prefix, GPTConfig{});
}

GPTConfig GPTConfig::from_map(const std::map<std::string, std::string>& m, const std::string& prefix,
                              const GPTConfig& base) {
  GPTConfig c = base;
  auto get = [&](const char* key, auto& field) {
    auto it = m.find(prefix + key);
    if (it == m.end()) return;
    try {
      size_t used = 0;
      if constexpr (std::is_same_v<std::decay_t<decltype(field)>, double>) field = std::stod(it->second, &used);
      else if constexpr (std::is_same_v<std::decay_t<decltype(field)>, bool>) field = std::stoll(it->second, &used) != 0;
      else field = std::stoll(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      KIRZL_FAIL(ErrorCode::InvalidArgument, "GPTConfig::from_map: '", prefix, key, "' is not a number: '", it->second,
                 "'");
    }
  };
  get("vocab_size", c.vocab_size);
  get("block_size", c.block_size);
  get("n_layer", c.n_layer);
  get("n_head", c.n_head);
  get("n_embd", c.n_embd);
  get("dropout", c.dropout);
  get("bias", c.bias);
  get("vocab_padding", c.vocab_padding);
  return c;
}

// ---- modules ----

MLP::MLP(const GPTConfig& c) : dropout(c.dropout) {
  c_fc = register_module("c_fc", nn::as_module(nn::Linear(c.n_embd, 4 * c.n_embd, {.bias = c.bias})));
  c_proj = register_module("c_proj", nn::as_module(nn::Linear(4 * c.n_embd, c.n_embd, {.bias = c.bias})));
}

Tensor MLP::forward(const Tensor& x) {
  // GPT-2's "gelu_new" is the tanh approximation; loaded GPT-2 weights expect it.
  Tensor h = gelu((*c_fc)(x), GeluApproximation::Tanh);
  return kirzl::dropout((*c_proj)(h), dropout, is_training());
}

Block::Block(const GPTConfig& c) {
  ln_1 = register_module("ln_1", nn::as_module(nn::LayerNorm(c.n_embd)));
  attn = register_module("attn", nn::as_module(nn::CausalSelfAttention(c.n_embd, c.n_head,
                                                                        {.bias = c.bias, .dropout = c.dropout})));
  ln_2 = register_module("ln_2", nn::as_module(nn::LayerNorm(c.n_embd)));
  mlp = register_module("mlp", std::make_shared<MLP>(c));
}

Tensor Block::forward(const Tensor& x) {
  Tensor r = x + (*attn)((*ln_1)(x));
  return r + (*mlp)((*ln_2)(r));
}

// Note [GPT vocabulary padding]: GPT-2's 50257 classes make the output GEMM's leading dimension
// odd, which costs cuBLASLt its fast kernels and the loss kernels their 16-byte vector loads. As
// llm.c does, wte (tied to the output layer) is allocated with padded_vocab_size() rows (50304 =
// 393 * 128), and the model stays the 50257-class model:
//  - rows [vocab_size, padded) are zero at construction, and no token id reaches them (the input
//    embedding gathers from the first vocab_size rows only, token_table, so an id in the padding
//    is out of range there, on CUDA too);
//  - the output GEMM runs over all padded rows; forward() returns the first vocab_size columns (a
//    strided view), so loss()'s softmax never sees the padded logits and backward of the slice
//    gives them a zero gradient; fused_loss() passes num_classes = vocab_size to
//    linear_cross_entropy, whose kernels leave the padding columns out of the softmax and write a
//    zero gradient there. Either way the padding rows' gradient is exactly zero (and so is their
//    contribution to every other gradient), and SGD / Adam / AdamW (decoupled decay of a zero is
//    zero) keep them at zero: loss and gradients equal the unpadded model's;
//  - generate() samples from forward()'s logits: never a padded id;
//  - GPT-2 files (gpt2_state_dict / safetensors) hold the true [vocab_size, n_embd]; loading one
//    zeroes the padding. Module::state_dict() (kirzl checkpoints, DDP, ZeRO) sees the parameter
//    as allocated, [padded_vocab_size, n_embd]: loading such a checkpoint needs the same
//    vocab_padding, which to_map() records ("vocab_padding").
GPT::GPT(const GPTConfig& config) : config_(config) {
  config_.validate();
  wte = register_module("wte", nn::as_module(nn::Embedding(config_.padded_vocab_size(), config_.n_embd)));
  wpe = register_module("wpe", nn::as_module(nn::Embedding(config_.block_size, config_.n_embd)));
  h = register_module("h", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    blocks_.push_back(std::make_shared<Block>(config_));
    h->push_back(std::shared_ptr<nn::Module>(blocks_.back()));
  }
  ln_f = register_module("ln_f", nn::as_module(nn::LayerNorm(config_.n_embd)));
  init_weights();
}

void GPT::init_weights() {
  NoGradGuard no_grad;
  // GPT-2's scheme as nanoGPT / PyTorch document it: N(0, 0.02) everywhere, with the projections
  // that write into the residual stream scaled by 1/sqrt(2 n_layer) (two per block), so that the
  // stream's variance does not grow with depth.
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  // The true rows draw what an unpadded model's would; the padding rows are zero (Note [GPT
  // vocabulary padding]).
  Tensor true_rows = wte->weight.narrow(0, 0, config_.vocab_size);
  nn::init::normal_(true_rows, 0.0, 0.02);
  Tensor padding = wte->weight.narrow(0, config_.vocab_size, config_.padded_vocab_size() - config_.vocab_size);
  nn::init::zeros_(padding);
  nn::init::normal_(wpe->weight, 0.0, 0.02);
  for (auto& b : blocks_) {
    for (nn::Linear* l : {b->attn->c_attn.get(), b->attn->c_proj.get(), b->mlp->c_fc.get(), b->mlp->c_proj.get()}) {
      const bool residual = l == b->attn->c_proj.get() || l == b->mlp->c_proj.get();
      nn::init::normal_(l->weight, 0.0, residual ? proj_std : 0.02);
      if (l->bias.defined()) nn::init::zeros_(l->bias);
    }
  }
  // LayerNorms are already ones / zeros.
}

void GPT::check_tokens(const Tensor& idx) const {
  KIRZL_CHECK(idx.defined(), "GPT::forward: idx is undefined");
  KIRZL_CHECK(idx.dtype() == DType::i64 || idx.dtype() == DType::i32,
              "GPT::forward: idx must hold token ids (i64 or i32), got ", idx.describe());
  KIRZL_CHECK(idx.dim() == 2, "GPT::forward: idx must be [B, T], got ", idx.describe());
  const int64_t T = idx.size(1);
  KIRZL_CHECK(T >= 1 && T <= config_.block_size, "GPT::forward: sequence length ", T, " of idx ", idx.describe(),
              " must be in [1, block_size = ", config_.block_size, "]");
  if (idx.device().is_cpu() && idx.numel() > 0) {
    // The embedding op checks too, but this message says which model limit was broken. CUDA
    // inputs are left to the op: a check here would synchronise the stream.
    const double lo = min(idx).item(), hi = max(idx).item();
    KIRZL_CHECK(lo >= 0 && hi < static_cast<double>(config_.vocab_size), "GPT::forward: token ids must be in [0, ",
                config_.vocab_size, "), got ids from ", static_cast<int64_t>(lo), " to ", static_cast<int64_t>(hi),
                " in ", idx.describe());
  }
}

namespace {

// The true rows of wte, for the input embedding: the op's index check (deferred on CUDA, where
// check_tokens does not look) then rejects an id in the padding, [vocab_size, padded_vocab_size).
Tensor token_table(const GPT& m) { return m.wte->weight.narrow(0, 0, m.config().vocab_size); }

// The position embeddings of positions 0 .. T-1: the first T rows of wpe, as embedding(wpe,
// arange(T)) would gather them (the same values and the same gradient), without building
// arange(T) on the host and copying it to the device at every step, which a CUDA graph could not
// capture (Note [cuda graph capture]).
Tensor position_rows(const Tensor& wpe, int64_t T) { return wpe.narrow(0, 0, T); }

}  // namespace

Tensor GPT::forward(const Tensor& input) {
  const bool unbatched = input.defined() && input.dim() == 1;
  Tensor idx = unbatched ? input.unsqueeze(0) : input;
  check_tokens(idx);
  const int64_t T = idx.size(1);
  // The embeddings are read, not called: their hooks run here (Note [parameter gather overlap]).
  wte->run_forward_pre_hooks();
  wpe->run_forward_pre_hooks();
  Tensor x = embedding(token_table(*this), idx) + position_rows(wpe->weight, T);  // [B, T, C] + [T, C]
  x = dropout(x, config_.dropout, is_training());
  for (auto& b : blocks_) x = (*b)(x);
  // The tied output layer over the padded rows, then the true classes' columns: a view whose
  // backward gives the padding a zero gradient (Note [GPT vocabulary padding]).
  Tensor logits = linear((*ln_f)(x), wte->weight).narrow(-1, 0, config_.vocab_size);
  return unbatched ? logits.squeeze(0) : logits;
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets) {
  KIRZL_CHECK(idx.defined() && targets.defined() && idx.shape() == targets.shape(),
              "GPT::loss: idx and targets must have one shape [B, T], got idx ",
              idx.defined() ? idx.describe() : std::string("undefined"), " and targets ",
              targets.defined() ? targets.describe() : std::string("undefined"));
  Tensor logits = forward(idx);
  const int64_t V = config_.vocab_size;
  return cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}));
}

// Note [fused GPT step]: the blocks are unrolled so that each residual add meets the LayerNorm that
// follows it -- ln_2 of the same block, then ln_1 of the next block (ln_f after the last) -- in
// one residual_layer_norm, whose sum is the residual stream and whose normed output feeds the
// next sublayer. Same math as Block::forward and forward(), in fewer kernels and saved tensors.
Tensor GPT::fused_loss(const Tensor& idx, const Tensor& targets) {
  KIRZL_CHECK(idx.defined() && targets.defined() && idx.dim() == 2 && idx.shape() == targets.shape(),
              "GPT::fused_loss: idx and targets must have one shape [B, T], got idx ",
              idx.defined() ? idx.describe() : std::string("undefined"), " and targets ",
              targets.defined() ? targets.describe() : std::string("undefined"));
  KIRZL_CHECK(!is_training() || config_.dropout == 0, "GPT::fused_loss runs no dropout, but the model is in ",
              "training mode with dropout ", config_.dropout, ": use loss(), or eval(), or dropout 0");
  check_tokens(idx);
  const int64_t B = idx.size(0), T = idx.size(1), C = config_.n_embd;
  // The submodules' weights are read here, not through the modules' operator(): each module's
  // forward pre-hooks run just before its weights are first read, so that sharded DDP's per-module
  // waits interleave with the blocks as in forward() (Note [parameter gather overlap]).
  wte->run_forward_pre_hooks();
  wpe->run_forward_pre_hooks();
  Tensor x = embedding(token_table(*this), idx) + position_rows(wpe->weight, T);
  blocks_.front()->run_forward_pre_hooks();
  nn::LayerNorm& first = *blocks_.front()->ln_1;
  first.run_forward_pre_hooks();
  Tensor normed = layer_norm(x, {C}, first.weight, first.bias, first.options.eps);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = *blocks_[i];
    // Block i's hooks (and its ln_1's) ran before its ln_1 was read: above for the first, at the
    // end of the previous iteration for the others. Each module's hooks run once per call.
    Tensor attn_out = (*b.attn)(normed);
    b.ln_2->run_forward_pre_hooks();
    auto r1 = residual_layer_norm(attn_out, x, b.ln_2->weight, b.ln_2->bias, b.ln_2->options.eps);
    b.mlp->run_forward_pre_hooks();
    b.mlp->c_fc->run_forward_pre_hooks();
    b.mlp->c_proj->run_forward_pre_hooks();
    const Tensor& fc_bias = b.mlp->c_fc->bias;
    Tensor mlp_out;
    if (fc_bias.defined() && b.mlp->c_proj->bias.defined() && x.device().is_cuda()) {
      // On CUDA the whole MLP with its bias, GELU and bias gradients in GEMM epilogues
      // (gelu_mlp; Note [GEMM epilogues]); the CPU keeps the composition below.
      mlp_out = gelu_mlp(r1.normed, b.mlp->c_fc->weight, fc_bias, b.mlp->c_proj->weight, b.mlp->c_proj->bias);
    } else {
      Tensor h = fc_bias.defined() ? bias_gelu(linear(r1.normed, b.mlp->c_fc->weight), fc_bias)
                                   : gelu(linear(r1.normed, b.mlp->c_fc->weight), GeluApproximation::Tanh);
      mlp_out = linear(h, b.mlp->c_proj->weight, b.mlp->c_proj->bias);
    }
    if (i + 1 < blocks_.size()) blocks_[i + 1]->run_forward_pre_hooks();
    nn::LayerNorm& next = i + 1 < blocks_.size() ? *blocks_[i + 1]->ln_1 : *ln_f;
    next.run_forward_pre_hooks();
    auto r2 = residual_layer_norm(mlp_out, r1.sum, next.weight, next.bias, next.options.eps);
    x = r2.sum;
    normed = r2.normed;
  }
  // The padded classes stay out of the softmax (Note [GPT vocabulary padding]).
  return linear_cross_entropy(normed.reshape({B * T, C}), wte->weight, targets.reshape({B * T}),
                              {.num_classes = config_.vocab_size});
}

namespace {

// Restores a module's training mode on scope exit.
class ModeGuard {
 public:
  explicit ModeGuard(nn::Module& m) : m_(m), was_(m.is_training()) { m.eval(); }
  ~ModeGuard() { m_.train(was_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  nn::Module& m_;
  bool was_;
};

// One token from `logits` (one row): greedy at temperature <= 0, else a draw from
// softmax(logits / temperature) restricted to the top_k largest, by inverting the CDF at u.
int64_t sample_token(std::vector<double> logits, double temperature, int64_t top_k, double u) {
  const auto n = static_cast<int64_t>(logits.size());
  if (temperature <= 0) return std::max_element(logits.begin(), logits.end()) - logits.begin();
  for (double& l : logits) l /= temperature;
  if (top_k > 0 && top_k < n) {
    std::vector<double> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[top_k - 1];
    for (double& l : logits)
      if (l < kth) l = -std::numeric_limits<double>::infinity();
  }
  const double mx = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (double& l : logits) total += (l = std::exp(l - mx));
  double target = u * total, acc = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (logits[i] == 0) continue;
    last = i;
    acc += logits[i];
    if (acc > target) return i;
  }
  return last;  // rounding left u * total at the very top
}

}  // namespace

Tensor GPT::generate(const Tensor& input, int64_t max_new_tokens, double temperature, int64_t top_k, Generator* gen) {
  KIRZL_CHECK(input.defined() && (input.dim() == 1 || input.dim() == 2) && input.numel() > 0,
              "GPT::generate: idx must be a non-empty [B, T] (or [T]) tensor of token ids, got ",
              input.defined() ? input.describe() : std::string("undefined"));
  KIRZL_CHECK(max_new_tokens >= 0, "GPT::generate: max_new_tokens must be >= 0, got ", max_new_tokens);
  KIRZL_CHECK(top_k >= 0, "GPT::generate: top_k must be >= 0, got ", top_k);
  KIRZL_CHECK(std::isfinite(temperature), "GPT::generate: temperature must be finite, got ", temperature);
  Generator& g = gen ? *gen : default_generator();
  NoGradGuard no_grad;
  ModeGuard eval_mode(*this);
  Tensor idx2 = input.dim() == 1 ? input.unsqueeze(0) : input;
  const int64_t B = idx2.size(0), T0 = idx2.size(1), V = config_.vocab_size;
  std::vector<int64_t> seq = idx2.to(Device::cpu()).to_vector<int64_t>();
  std::vector<std::vector<int64_t>> rows(B);
  for (int64_t b = 0; b < B; ++b) rows[b].assign(seq.begin() + b * T0, seq.begin() + (b + 1) * T0);
  const Device dev = wte->weight.device();
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const int64_t len = static_cast<int64_t>(rows[0].size()), t = std::min(len, config_.block_size);
    std::vector<int64_t> ctx;
    ctx.reserve(static_cast<size_t>(B * t));
    for (auto& r : rows) ctx.insert(ctx.end(), r.end() - t, r.end());
    Tensor logits = forward(from_vector(ctx, {B, t}).to(dev)).select(1, t - 1);  // [B, V]
    std::vector<double> l = logits.to(Device::cpu()).to_vector<double>();
    for (int64_t b = 0; b < B; ++b) {
      // One Philox block per row and step: the draw depends on the seed and position only.
      const Generator::Draw d = g.reserve(1);
      auto w = Generator::philox(d.seed, d.offset);
      const double u = uint_to_unit_double(w[0], w[1]);
      rows[b].push_back(sample_token(std::vector<double>(l.begin() + b * V, l.begin() + (b + 1) * V), temperature,
                                     top_k, u));
    }
  }
  std::vector<int64_t> out;
  for (auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  Tensor result = from_vector(out, {B, T0 + max_new_tokens});
  return input.dim() == 1 ? result.squeeze(0) : result;
}

std::string GPT::repr() const { return "GPT(" + config_.str() + ")"; }

int64_t GPT::num_parameters() const {
  return nn::Module::num_parameters() - (wte->weight.size(0) - config_.vocab_size) * wte->weight.size(1);
}

}  // namespace kirzl::models
