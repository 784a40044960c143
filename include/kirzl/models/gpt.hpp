// GPT-2: configurations from 124M to 1.5B parameters (and a tiny one for tests), the model, and
// loading/saving weights under GPT-2's usual tensor names.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/core/generator.hpp"
#include "kirzl/nn/attention.hpp"
#include "kirzl/nn/containers.hpp"
#include "kirzl/nn/layers.hpp"
#include "kirzl/state_dict.hpp"

namespace kirzl::models {

/// The shape of a GPT-2 model. Plain data: copy freely.
struct GPTConfig {
  int64_t vocab_size = 50257;  ///< the true vocabulary (GPT-2's BPE); ids and logits range over it
  int64_t block_size = 1024;   ///< the longest sequence (the number of learned positions)
  int64_t n_layer = 12;        ///< transformer blocks (the model's depth)
  int64_t n_head = 12;         ///< attention heads per block; must divide n_embd
  int64_t n_embd = 768;        ///< C: the width of the residual stream (embedding size)
  double dropout = 0.0;  ///< on the embeddings and both residual branches while training
  bool bias = true;      ///< biases in the Linear layers (the LayerNorms always have one)
  /// The token embedding wte (tied to the output layer) is allocated with padded_vocab_size() =
  /// vocab_size rounded up to a multiple of this many rows (1: no padding), as llm.c does: the
  /// output GEMM's leading dimension is then aligned (50257 -> 50304 = 393 * 128 for GPT-2), which
  /// cuBLASLt and 16-byte vector loads want. The padding is invisible to users: the padded rows are
  /// zero, logits are [.., vocab_size], the losses' softmax excludes the padded classes (so those
  /// rows' gradients are zero and they stay zero under SGD/Adam/AdamW), generate() never samples
  /// them, num_parameters() does not count them, and GPT-2 files hold [vocab_size, n_embd]. Only
  /// wte.weight itself (and so Module::state_dict checkpoints) has padded_vocab_size() rows.
  int64_t vocab_padding = 128;

  /// GPT-2 small ("gpt2"): 12 layers, 12 heads, 768 channels, 1024 positions (the defaults).
  static GPTConfig gpt2_124m() { return {}; }
  /// GPT-2 medium ("gpt2-medium"): 24 layers, 16 heads, 1024 channels.
  static GPTConfig gpt2_350m() { return {.n_layer = 24, .n_head = 16, .n_embd = 1024}; }
  /// GPT-2 large ("gpt2-large"): 36 layers, 20 heads, 1280 channels.
  static GPTConfig gpt2_774m() { return {.n_layer = 36, .n_head = 20, .n_embd = 1280}; }
  /// GPT-2 XL ("gpt2-xl"): 48 layers, 25 heads, 1600 channels.
  static GPTConfig gpt2_1558m() { return {.n_layer = 48, .n_head = 25, .n_embd = 1600}; }
  /// Two layers, two heads, 32 channels, 16 positions, 64 tokens: for tests (~30k parameters).
  static GPTConfig tiny() { return {.vocab_size = 64, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32}; }
  /// The preset of that name: "124m"/"gpt2", "350m"/"gpt2-medium", "774m"/"gpt2-large",
  /// "1558m"/"gpt2-xl", "tiny". Throws Error{InvalidArgument} listing the names otherwise.
  static GPTConfig preset(const std::string& name);

  /// The rows of wte: vocab_size rounded up to a multiple of vocab_padding (50304 for GPT-2).
  int64_t padded_vocab_size() const;
  /// Throws Error{InvalidArgument} naming the field unless every size (vocab_padding included) is
  /// positive, n_embd % n_head == 0 and 0 <= dropout < 1.
  void validate() const;
  /// The parameter count of the true model GPT(config) without building it (tied embeddings
  /// counted once, vocabulary padding not counted): V C + T C + L (12 C^2 + 4 C [+ 9 C with
  /// biases]) + 2 C with V = vocab_size. 124,439,808 for gpt2_124m(). The allocated parameters
  /// hold (padded_vocab_size() - vocab_size) * n_embd more elements (the zero rows of wte).
  int64_t num_parameters() const;
  /// "GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, ..., vocab_padding=128)".
  std::string str() const;
  /// The fields as strings ("vocab_size" -> "50257", ...), for checkpoint / safetensors metadata.
  std::map<std::string, std::string> to_map() const;
  /// Reads the fields that `m` has (keys as in to_map(), optionally after `prefix`) over `base`.
  /// Throws Error{InvalidArgument} for a value that is not a number.
  static GPTConfig from_map(const std::map<std::string, std::string>& m, const std::string& prefix,
                            const GPTConfig& base);
  /// from_map over the default config (GPT-2 124M).
  static GPTConfig from_map(const std::map<std::string, std::string>& m, const std::string& prefix = "");
  /// Every field equal (dropout compared exactly), e.g. a checkpoint's config against the model's.
  bool operator==(const GPTConfig&) const = default;
};

/// The feed-forward half of a block: c_proj(gelu_tanh(c_fc(x))), C -> 4C -> C, then dropout.
class MLP : public nn::Module {
 public:
  /// Registers c_fc (n_embd -> 4 n_embd) and c_proj (4 n_embd -> n_embd), with biases when
  /// config.bias, initialised as any nn::Linear (GPT re-initialises them). Does not validate
  /// `config` (GPT does).
  explicit MLP(const GPTConfig& config);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "MLP"; }
  /// The expanding layer, C -> 4C (GPT-2's "mlp.c_fc"); its output goes through the tanh GELU.
  std::shared_ptr<nn::Linear> c_fc;
  /// The projection back, 4C -> C (GPT-2's "mlp.c_proj"), a residual projection.
  std::shared_ptr<nn::Linear> c_proj;
  /// Probability of zeroing an output element in training mode (config.dropout); 0 in eval mode.
  double dropout;
};

/// A pre-LayerNorm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)). Its forward is one
/// short function on purpose: fused kernels (residual + LayerNorm, bias + GELU, flash attention)
/// replace its lines one by one.
class Block : public nn::Module {
 public:
  /// Registers ln_1, attn, ln_2 and mlp (in that order, GPT-2's names) for `config`; the
  /// attention and MLP use config.bias and config.dropout. Throws Error{InvalidArgument} when
  /// n_embd is not a positive multiple of n_head; does not validate the rest of `config`.
  explicit Block(const GPTConfig& config);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "Block"; }
  /// LayerNorm over n_embd applied to the input of the attention branch.
  std::shared_ptr<nn::LayerNorm> ln_1;
  /// LayerNorm over n_embd applied to the input of the MLP branch.
  std::shared_ptr<nn::LayerNorm> ln_2;
  /// Causal multi-head self-attention with n_head heads (GPT-2's "attn.c_attn", "attn.c_proj").
  std::shared_ptr<nn::CausalSelfAttention> attn;
  /// The feed-forward branch.
  std::shared_ptr<MLP> mlp;
};

/// GPT-2 (Radford et al. 2019), as PyTorch's reference implementations define it: token and
/// learned position embeddings, n_layer pre-LN blocks, a final LayerNorm, and an output layer that
/// shares the token embedding matrix ("weight tying").
///
/// Parameter names are GPT-2's: "wte.weight", "wpe.weight", "h.{i}.ln_1.weight",
/// "h.{i}.attn.c_attn.weight", ..., "ln_f.bias" (Linear layout [out, in]; see
/// save_gpt2_safetensors for the Conv1D layout of GPT-2 files). The tied matrix "wte.weight" is
/// registered once: optimizers and DDP see it once, and its gradient is the sum of the embedding's
/// and the output layer's.
///
/// Vocabulary padding (Note [GPT vocabulary padding] in src/nn/gpt.cpp): wte.weight is
/// [padded_vocab_size, n_embd]; rows >= vocab_size are zero at construction, take part in the
/// output GEMM only (their logits are sliced off or masked out of every softmax), and get a zero
/// gradient, so they stay zero. See GPTConfig::vocab_padding for what users see.
///
/// Initialisation (from the default generator; seed it with manual_seed): every Linear and
/// Embedding weight ~ N(0, 0.02) (wte's first vocab_size rows, drawn as without padding), the
/// residual projections (attn.c_proj, mlp.c_proj) ~ N(0, 0.02 / sqrt(2 n_layer)), biases 0,
/// LayerNorm weight 1 and bias 0. Parameters are f32 on the CPU; use to(DType) / to(Device).
/// Not thread-safe (a Module).
class GPT : public nn::Module {
 public:
  /// Validates `config` (see GPTConfig::validate) and allocates and initialises the weights.
  explicit GPT(const GPTConfig& config);

  /// Logits [B, T, vocab_size] for token ids `idx` [B, T] (i64 or i32; a 1-D [T] is taken as B = 1
  /// and gives [T, vocab_size]): a strided view (row stride padded_vocab_size) of the padded
  /// output GEMM's [B, T, padded_vocab_size] result, the padded classes left out. Throws
  /// Error{InvalidArgument} when T > block_size, T == 0, the dtype is not an integer, or (for CPU
  /// inputs) an id lies outside [0, vocab_size).
  Tensor forward(const Tensor& idx) override;
  /// Mean cross-entropy (in nats) of forward(idx) against `targets` [B, T] (a target of -100 is
  /// ignored). Throws Error{InvalidArgument} when the shapes differ.
  Tensor loss(const Tensor& idx, const Tensor& targets);
  /// The same loss through the fused ops of include/kirzl/ops/fused.hpp: each residual add with
  /// the LayerNorm after it (residual_layer_norm), the MLP's bias with its GELU (bias_gelu; on
  /// CUDA, with biases, the whole MLP as gelu_mlp: bias, GELU and bias gradients in cuBLASLt
  /// GEMM epilogues), and
  /// the tied classifier with the cross-entropy (linear_cross_entropy, whose gradient overwrites
  /// the logits, so no second [B*T, V] buffer; the GEMM runs over all padded_vocab_size rows and
  /// the kernel's softmax over the first vocab_size columns, options.num_classes). On CUDA,
  /// attention runs the flash kernels in either path. Equals loss() up to rounding; the loss is f32
  /// for bf16 models. Runs no dropout: throws Error{InvalidArgument} in training mode when
  /// config().dropout > 0.
  Tensor fused_loss(const Tensor& idx, const Tensor& targets);
  /// Appends `max_new_tokens` tokens to each row of `idx` [B, T0] (or [T0]) and returns the longer
  /// sequences [B, T0 + max_new_tokens] (i64, CPU). Each step feeds the last block_size tokens,
  /// divides the last logits by `temperature` (<= 0: greedy argmax), keeps the `top_k` largest
  /// (0: all) and samples from the softmax with one uniform draw per row from `gen` (the default
  /// generator when null): the same seed gives the same text. Runs in eval mode without autograd
  /// and restores the training mode afterwards. No KV cache: each step recomputes the context.
  Tensor generate(const Tensor& idx, int64_t max_new_tokens, double temperature = 1.0, int64_t top_k = 0,
                  Generator* gen = nullptr);

  /// The true model's parameter count, as GPTConfig::num_parameters(): Module's count of
  /// parameter elements less wte's (padded_vocab_size - vocab_size) * n_embd padding elements.
  int64_t num_parameters() const override;

  /// The config the model was built with (validated); valid while the model lives.
  const GPTConfig& config() const { return config_; }
  std::string repr() const override;
  /// Block `i` (0 = nearest the input), typed; the same object as h's entry i. Throws
  /// std::out_of_range for i >= n_layer.
  Block& block(size_t i) const { return *blocks_.at(i); }

  /// Token embedding [padded_vocab_size, n_embd], tied to the output layer (see the class comment).
  std::shared_ptr<nn::Embedding> wte;
  /// Learned position embedding [block_size, n_embd].
  std::shared_ptr<nn::Embedding> wpe;
  /// The n_layer Blocks, registered as "h.0", "h.1", ... (use block(i) for a typed reference).
  std::shared_ptr<nn::ModuleList> h;
  /// The final LayerNorm, before the output layer.
  std::shared_ptr<nn::LayerNorm> ln_f;

 private:
  void init_weights();
  void check_tokens(const Tensor& idx) const;
  GPTConfig config_;
  std::vector<std::shared_ptr<Block>> blocks_;
};

// ---- weights under GPT-2's names (the layout of Hugging Face transformers' GPT-2 files) ----

/// The model's weights as GPT-2 files name and lay them out: "wte.weight", "wpe.weight",
/// "h.{i}.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}.{weight,bias}", "ln_f.*" (no
/// "transformer." prefix). GPT-2 stores its projections as Conv1D weights [in, out], the transpose
/// of a Linear's [out, in]: those four per block are returned as new contiguous transposed copies;
/// "wte.weight" is a view of the first vocab_size rows of the padded parameter ([vocab_size,
/// n_embd], as GPT-2 files hold it); the other entries are the parameters themselves (handles).
/// The tied output layer has no entry.
StateDict gpt2_state_dict(const GPT& model);

/// Loads `dict` (names and layout as gpt2_state_dict, with or without a "transformer." prefix;
/// any floating dtype, converted to the model's; "wte.weight" [vocab_size, n_embd], copied into
/// the first rows of the padded parameter, whose padding rows are set to zero) into `model`, in
/// place. Ignored: the attention
/// mask buffers "h.{i}.attn.bias" / "h.{i}.attn.masked_bias" and "lm_head.weight" (tied to wte).
/// Throws Error{InvalidArgument} naming every missing, unexpected and mis-shaped tensor (with the
/// expected GPT-2 shape) before changing anything; `source` names the file in the message.
void load_gpt2_state_dict(GPT& model, const StateDict& dict, const std::string& source = "state dict");

/// Writes gpt2_state_dict(model) as a safetensors file (atomically, see io::save_safetensors),
/// with the config in the metadata ("gpt.vocab_size", ...) plus `metadata`. `dtype`: the stored
/// floating dtype (f32, bf16, f16). Python's transformers / safetensors read it by name.
void save_gpt2_safetensors(const std::string& path, const GPT& model,
                           const std::map<std::string, std::string>& metadata = {}, DType dtype = DType::f32);
/// Reads a GPT-2 safetensors file (F32, BF16 or F16) into `model`; see load_gpt2_state_dict.
/// Throws Error{Io} for an unreadable or malformed file, Error{InvalidArgument} for a mismatch.
void load_gpt2_safetensors(const std::string& path, GPT& model);
/// The config of a GPT-2 safetensors file: from its "gpt.*" metadata when save_gpt2_safetensors
/// wrote it (files without "gpt.vocab_padding" get the default), else inferred from the shapes
/// (vocab, positions, width, depth, biases) with n_head = `n_head` (0: n_embd / 64, GPT-2's head
/// size) and the default vocab_padding. Throws Error{Io}/{InvalidArgument}.
GPTConfig gpt2_config_from_safetensors(const std::string& path, int64_t n_head = 0);

}  // namespace kirzl::models
