// models::GPT: shapes, parameter counts, weight tying, causal masking, gradients, learning,
// sampling, initialisation, errors, and weights under GPT-2's names.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <kirzl/io/safetensors.hpp>
#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace kirzl;
using models::GPT;
using models::GPTConfig;
namespace fs = std::filesystem;

namespace {

Tensor tokens(const Shape& shape, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  return randint(0, vocab, shape, {.dtype = DType::i64}, &g);
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(sub(a.to(DType::f64), b.to(DType::f64)))).item(); }

// A config small enough for finite differences.
GPTConfig micro() { return {.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 2, .n_embd = 8}; }

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("kirzl_test_gpt_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST(GPT, ForwardShapes) {
  manual_seed(0);
  GPT model(GPTConfig::tiny());
  Tensor idx = tokens({3, 7}, 64, 1);
  Tensor logits = model(idx);
  EXPECT_EQ(logits.shape(), Shape({3, 7, 64}));
  EXPECT_EQ(logits.dtype(), DType::f32);
  EXPECT_EQ(model(idx.select(0, 1)).shape(), Shape({7, 64}));  // unbatched
  EXPECT_LT(max_abs_diff(model(idx.select(0, 1)), logits.select(0, 1)), 1e-5);
  EXPECT_EQ(model(idx.to(DType::i32)).shape(), Shape({3, 7, 64}));
  Tensor loss = model.loss(idx, tokens({3, 7}, 64, 2));
  EXPECT_EQ(loss.numel(), 1);
  // A fresh model predicts nearly uniformly: the loss is close to log(V).
  EXPECT_NEAR(loss.item(), std::log(64.0), 0.1);
}

TEST(GPT, ParameterCountsOfThePresets) {
  // 124M by hand: wte 50257*768 + wpe 1024*768 + 12 blocks * (ln 4*768 + c_attn 768*2304 + 2304
  // + c_proj 768*768 + 768 + c_fc 768*3072 + 3072 + mlp.c_proj 3072*768 + 768) + ln_f 2*768.
  const int64_t per_block = 4 * 768 + (768 * 2304 + 2304) + (768 * 768 + 768) + (768 * 3072 + 3072) + (3072 * 768 + 768);
  const int64_t gpt2 = 50257 * 768 + 1024 * 768 + 12 * per_block + 2 * 768;
  EXPECT_EQ(gpt2, 124439808);
  EXPECT_EQ(GPTConfig::gpt2_124m().num_parameters(), gpt2);
  EXPECT_EQ(GPTConfig::gpt2_350m().num_parameters(), 354823168);
  EXPECT_EQ(GPTConfig::gpt2_774m().num_parameters(), 774030080);
  EXPECT_EQ(GPTConfig::gpt2_1558m().num_parameters(), 1557611200);
  EXPECT_EQ(GPTConfig::preset("gpt2-xl"), GPTConfig::gpt2_1558m());
  // GPT-2's vocabulary padded to a multiple of 128 (llm.c's 50304 = 393 * 128); the true count
  // above leaves the padding out.
  EXPECT_EQ(GPTConfig::gpt2_124m().padded_vocab_size(), 50304);
  EXPECT_EQ(50304, 393 * 128);
  EXPECT_EQ(GPTConfig::gpt2_124m().vocab_size, 50257);
  EXPECT_EQ((GPTConfig{.vocab_size = 100, .vocab_padding = 1}).padded_vocab_size(), 100);
  EXPECT_EQ((GPTConfig{.vocab_size = 100, .vocab_padding = 64}).padded_vocab_size(), 128);
  // The formula agrees with the built model (tied output layer counted once, padding not counted),
  // with and without biases and padding; the allocated elements are the padding rows more.
  for (GPTConfig c : {GPTConfig::tiny(), micro(),
                      GPTConfig{.vocab_size = 100, .block_size = 32, .n_layer = 3, .n_head = 4, .n_embd = 48,
                                .bias = false, .vocab_padding = 1}}) {
    GPT m(c);
    EXPECT_EQ(m.num_parameters(), c.num_parameters()) << c.str();
    int64_t allocated = 0;
    for (const Tensor& p : m.parameters()) allocated += p.numel();
    EXPECT_EQ(allocated, c.num_parameters() + (c.padded_vocab_size() - c.vocab_size) * c.n_embd) << c.str();
    EXPECT_EQ(m.wte->weight.shape(), Shape({c.padded_vocab_size(), c.n_embd}));
  }
  EXPECT_KIRZL_ERROR(GPTConfig::preset("gpt5"), ErrorCode::InvalidArgument, "gpt5", "124m");
}

TEST(GPT, ParameterNamesAreGpt2s) {
  GPT m(micro());
  std::vector<std::string> names;
  for (const auto& [n, t] : m.named_parameters()) names.push_back(n);
  const std::vector<std::string> first = {"wte.weight",          "wpe.weight",           "h.0.ln_1.weight",
                                          "h.0.ln_1.bias",       "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
                                          "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_2.weight",
                                          "h.0.ln_2.bias",       "h.0.mlp.c_fc.weight",  "h.0.mlp.c_fc.bias",
                                          "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias"};
  ASSERT_EQ(names.size(), 2 + 2 * 12 + 2u);
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 14), first);
  EXPECT_EQ(names[names.size() - 2], "ln_f.weight");
  EXPECT_EQ(names.back(), "ln_f.bias");
}

TEST(GPT, TiedEmbeddingIsOneParameterWithTheSummedGradient) {
  manual_seed(3);
  GPT m(micro());
  int wte_count = 0;
  for (const Tensor& p : m.parameters()) wte_count += p.is_same(m.wte->weight);
  EXPECT_EQ(wte_count, 1);
  Tensor idx = tokens({2, 5}, 11, 4), tgt = tokens({2, 5}, 11, 5);
  m.loss(idx, tgt).backward();
  // The same computation with the two uses of the matrix as two separate leaves.
  Tensor e_in = m.wte->weight.detach().clone().requires_grad_();
  Tensor e_out = m.wte->weight.detach().clone().requires_grad_();
  Tensor x = embedding(e_in, idx) + embedding(m.wpe->weight, arange(5));
  for (size_t i = 0; i < 2; ++i) x = m.block(i).forward(x);
  Tensor logits = linear(m.ln_f->forward(x), e_out).narrow(-1, 0, 11);  // the padding columns cut off
  Tensor loss = cross_entropy(logits.reshape({-1, 11}), tgt.reshape({-1}));
  loss.backward();
  EXPECT_GT(max(abs(e_in.grad())).item(), 0.0);
  EXPECT_GT(max(abs(e_out.grad())).item(), 0.0);
  EXPECT_LT(max_abs_diff(m.wte->weight.grad(), e_in.grad() + e_out.grad()), 1e-6);
  EXPECT_GT(max_abs_diff(m.wte->weight.grad(), e_out.grad()), 1e-4);  // both uses contribute
}

TEST(GPT, ChangingAFutureTokenLeavesEarlierLogitsUnchanged) {
  manual_seed(5);
  GPT m(GPTConfig::tiny());
  Tensor a = tokens({2, 12}, 64, 6);
  Tensor b = a.clone();
  b.select(1, 7).fill_(static_cast<double>((a.select(1, 7).to_vector<int64_t>()[0] + 1) % 64));
  Tensor la = m(a), lb = m(b);
  EXPECT_EQ(max_abs_diff(la.slice(1, 0, 7), lb.slice(1, 0, 7)), 0.0);
  EXPECT_GT(max_abs_diff(la.slice(1, 7, 12).select(0, 0), lb.slice(1, 7, 12).select(0, 0)), 1e-4);
}

TEST(GPT, GradientsMatchFiniteDifferencesInF64) {
  manual_seed(7);
  GPT m(micro());
  m.to(DType::f64);
  // Larger weights than the N(0, 0.02) init, so that every path carries a visible signal.
  {
    NoGradGuard g;
    for (Tensor p : m.parameters()) p.copy_(randn(p.shape(), {.dtype = DType::f64}) * 0.5);
  }
  Tensor idx = tokens({2, 6}, 11, 8);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>&) { return m(idx); }, m.parameters(),
                   {.eps = 1e-6, .atol = 1e-6, .rtol = 1e-4});
}

TEST(GPT, OverfitsATinyBatch) {
  manual_seed(9);
  GPTConfig c = micro();
  c.vocab_size = 16;
  c.n_embd = 32;
  c.block_size = 8;
  GPT m(c);
  Tensor idx = tokens({2, 8}, 16, 10), tgt = tokens({2, 8}, 16, 11);
  optim::AdamW opt(m.parameters(), {.lr = 1e-2, .weight_decay = 0.0});
  const double first = m.loss(idx, tgt).item();
  double last = first;
  for (int i = 0; i < 200; ++i) {
    Tensor loss = m.loss(idx, tgt);
    opt.zero_grad();
    loss.backward();
    opt.step();
    last = loss.item();
  }
  EXPECT_NEAR(first, std::log(16.0), 0.1);
  EXPECT_LT(last, 0.15) << "from " << first;  // memorised: 16 positions of random tokens
}

TEST(GPT, GenerateIsDeterministicForASeed) {
  manual_seed(11);
  GPT m(GPTConfig::tiny());
  Tensor prompt = tokens({2, 3}, 64, 12);
  Generator g1(42), g2(42), g3(43);
  Tensor a = m.generate(prompt, 20, 1.0, 0, &g1);
  Tensor b = m.generate(prompt, 20, 1.0, 0, &g2);
  Tensor c = m.generate(prompt, 20, 1.0, 0, &g3);
  EXPECT_EQ(a.shape(), Shape({2, 23}));
  EXPECT_EQ(a.to_vector<int64_t>(), b.to_vector<int64_t>());
  EXPECT_NE(a.to_vector<int64_t>(), c.to_vector<int64_t>());
  EXPECT_EQ(max_abs_diff(a.slice(1, 0, 3), prompt), 0.0);  // the prompt is kept
  for (int64_t t : a.to_vector<int64_t>()) EXPECT_TRUE(t >= 0 && t < 64);
  EXPECT_TRUE(m.is_training());  // the mode is restored
  // Greedy and top_k = 1 both take the argmax of the last logits.
  Tensor greedy = m.generate(prompt, 1, 0.0);
  Tensor top1 = m.generate(prompt, 1, 1.0, 1, &g1);
  m.eval();
  Tensor expected = argmax(m(prompt).select(1, 2), -1);
  EXPECT_EQ(greedy.select(1, 3).to_vector<int64_t>(), expected.to_vector<int64_t>());
  EXPECT_EQ(top1.select(1, 3).to_vector<int64_t>(), expected.to_vector<int64_t>());
  // Longer than block_size: the context is cropped to the last block_size tokens.
  EXPECT_EQ(m.generate(prompt.select(0, 0), 30, 1.0, 5, &g1).shape(), Shape({33}));
}

TEST(GPT, InitialisationFollowsGpt2) {
  manual_seed(13);
  GPTConfig c{.vocab_size = 512, .block_size = 64, .n_layer = 8, .n_head = 4, .n_embd = 128};
  GPT m(c);
  auto std_of = [](const Tensor& t) { return std::sqrt(var(t.to(DType::f64)).item()); };
  EXPECT_NEAR(std_of(m.wte->weight), 0.02, 0.001);
  EXPECT_NEAR(std_of(m.wpe->weight), 0.02, 0.002);
  const double proj = 0.02 / std::sqrt(16.0);
  for (size_t i = 0; i < 8; ++i) {
    models::Block& b = m.block(i);
    EXPECT_NEAR(std_of(b.attn->c_attn->weight), 0.02, 0.001);
    EXPECT_NEAR(std_of(b.mlp->c_fc->weight), 0.02, 0.001);
    EXPECT_NEAR(std_of(b.attn->c_proj->weight), proj, 0.0005);
    EXPECT_NEAR(std_of(b.mlp->c_proj->weight), proj, 0.0005);
    for (const Tensor& bias : {b.attn->c_attn->bias, b.attn->c_proj->bias, b.mlp->c_fc->bias, b.mlp->c_proj->bias})
      EXPECT_EQ(max(abs(bias)).item(), 0.0);
    EXPECT_EQ(min(b.ln_1->weight).item(), 1.0);
    EXPECT_EQ(max(abs(b.ln_2->bias)).item(), 0.0);
  }
}

TEST(GPT, DropoutActsOnlyWhileTraining) {
  GPTConfig c = GPTConfig::tiny();
  c.dropout = 0.5;
  manual_seed(14);
  GPT m(c);
  Tensor idx = tokens({2, 8}, 64, 15);
  EXPECT_GT(max_abs_diff(m(idx), m(idx)), 1e-4);
  m.eval();
  EXPECT_EQ(max_abs_diff(m(idx), m(idx)), 0.0);
}

TEST(GPT, BadConfigsAndInputsGiveClearErrors) {
  EXPECT_KIRZL_ERROR(GPT(GPTConfig{.n_head = 5, .n_embd = 768}), ErrorCode::InvalidArgument, "n_embd (768)",
                     "n_head (5)");
  EXPECT_KIRZL_ERROR(GPT(GPTConfig{.vocab_size = 0}), ErrorCode::InvalidArgument, "vocab_size");
  EXPECT_KIRZL_ERROR(GPT(GPTConfig{.dropout = 1.0}), ErrorCode::InvalidArgument, "dropout");
  GPT m(GPTConfig::tiny());
  EXPECT_KIRZL_ERROR(m(tokens({1, 17}, 64, 1)), ErrorCode::InvalidArgument, "sequence length 17", "block_size = 16");
  EXPECT_KIRZL_ERROR(m(full({1, 4}, 64, {.dtype = DType::i64})), ErrorCode::InvalidArgument, "[0, 64)", "to 64");
  EXPECT_KIRZL_ERROR(m(full({1, 4}, -1, {.dtype = DType::i64})), ErrorCode::InvalidArgument, "from -1");
  EXPECT_KIRZL_ERROR(m(zeros({1, 4})), ErrorCode::InvalidArgument, "token ids", "f32");
  EXPECT_KIRZL_ERROR(m.loss(tokens({2, 4}, 64, 1), tokens({2, 5}, 64, 1)), ErrorCode::InvalidArgument, "[2, 4]",
                     "[2, 5]");
  EXPECT_KIRZL_ERROR(m.generate(tokens({1, 4}, 64, 1), -1), ErrorCode::InvalidArgument, "max_new_tokens");
}

// ---- vocabulary padding (Note [GPT vocabulary padding]) ----

namespace {

// The same model twice: wte padded (37 classes in 48 rows) and unpadded (vocab_padding 1), with
// equal weights in wte's first 37 rows and in every other parameter.
struct PaddedPair {
  std::unique_ptr<GPT> padded, plain;
};

PaddedPair padded_pair(bool bias) {
  GPTConfig c{.vocab_size = 37, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 16, .bias = bias,
              .vocab_padding = 16};
  manual_seed(30);
  PaddedPair p{std::make_unique<GPT>(c), nullptr};
  c.vocab_padding = 1;
  p.plain = std::make_unique<GPT>(c);
  NoGradGuard g;
  const auto a = p.padded->named_parameters(), b = p.plain->named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    Tensor dst = b[i].second;
    dst.copy_(a[i].first == "wte.weight" ? a[i].second.narrow(0, 0, 37) : a[i].second);
  }
  return p;
}

}  // namespace

// The key property: padding changes no number of the model. Logits [.., vocab_size], loss() and
// fused_loss(), and every gradient equal the unpadded model's; the padding rows' gradient is
// exactly zero.
TEST(GPTVocabPadding, LossLogitsAndGradientsEqualTheUnpaddedModels) {
  for (bool bias : {true, false}) {
    PaddedPair p = padded_pair(bias);
    ASSERT_EQ(p.padded->wte->weight.shape(), Shape({48, 16}));
    ASSERT_EQ(p.plain->wte->weight.shape(), Shape({37, 16}));
    EXPECT_EQ(max(abs(p.padded->wte->weight.narrow(0, 37, 11))).item(), 0.0);  // zero at construction
    if (!bias) {
      // The masking does not rely on those zeros: with values in the padding rows, too.
      NoGradGuard g;
      p.padded->wte->weight.narrow(0, 37, 11).copy_(randn({11, 16}));
    }
    Tensor idx = tokens({3, 13}, 37, 31), tgt = tokens({3, 13}, 37, 32);
    tgt.view({-1}).narrow(0, 5, 1).fill_(-100);
    Tensor lp = (*p.padded)(idx);
    EXPECT_EQ(lp.shape(), Shape({3, 13, 37}));
    EXPECT_EQ((*p.padded)(idx.select(0, 0)).shape(), Shape({13, 37}));
    EXPECT_LT(max_abs_diff(lp, (*p.plain)(idx)), 1e-6);
    for (bool fused : {false, true}) {
      auto run = [&](GPT& m) {
        m.zero_grad();
        Tensor l = fused ? m.fused_loss(idx, tgt) : m.loss(idx, tgt);
        l.backward();
        return l.item();
      };
      const double a = run(*p.padded), b = run(*p.plain);
      EXPECT_NEAR(a, b, 1e-6 * b) << "fused " << fused << ", bias " << bias;
      const auto pa = p.padded->named_parameters(), pb = p.plain->named_parameters();
      for (size_t i = 0; i < pa.size(); ++i) {
        Tensor ga = pa[i].second.grad(), gb = pb[i].second.grad();
        if (pa[i].first == "wte.weight") {
          EXPECT_EQ(max(abs(ga.narrow(0, 37, 11))).item(), 0.0) << "padding rows' gradient, fused " << fused;
          ga = ga.narrow(0, 0, 37);
        }
        const double scale = std::max(1e-3, max(abs(gb)).item());
        EXPECT_LT(max_abs_diff(ga, gb), 1e-5 * scale) << pa[i].first << ", fused " << fused << ", bias " << bias;
      }
    }
  }
}

// No gradient and decoupled weight decay of a zero: the padding stays zero through training.
TEST(GPTVocabPadding, PaddingRowsStayZeroUnderAdamW) {
  PaddedPair p = padded_pair(true);
  GPT& m = *p.padded;
  optim::AdamW opt(m.parameters(), {.lr = 1e-2, .weight_decay = 0.1});
  Tensor idx = tokens({2, 9}, 37, 33), tgt = tokens({2, 9}, 37, 34);
  for (int i = 0; i < 4; ++i) {
    opt.zero_grad();
    (i % 2 ? m.fused_loss(idx, tgt) : m.loss(idx, tgt)).backward();
    opt.step();
  }
  EXPECT_GT(max(abs(m.wte->weight.narrow(0, 0, 37))).item(), 0.0);
  EXPECT_EQ(max(abs(m.wte->weight.narrow(0, 37, 11))).item(), 0.0);
}

// Even with large values in the padding rows (which training never puts there), no padded id is
// ever sampled: greedy, full softmax and top-k.
TEST(GPTVocabPadding, GenerateNeverSamplesAPaddedId) {
  manual_seed(35);
  GPT m(micro());  // 11 classes in 128 rows
  {
    NoGradGuard g;
    m.wte->weight.narrow(0, 11, 117).copy_(randn({117, 8}) * 100.0);
  }
  Tensor prompt = tokens({2, 3}, 11, 36);
  EXPECT_EQ(m(prompt).shape(), Shape({2, 3, 11}));
  Generator gen(37);
  for (auto [temperature, top_k] : std::vector<std::pair<double, int64_t>>{{0.0, 0}, {1.0, 0}, {1.0, 3}, {5.0, 0}}) {
    Tensor out = m.generate(prompt, 12, temperature, top_k, &gen);
    for (int64_t t : out.to_vector<int64_t>()) EXPECT_TRUE(t >= 0 && t < 11) << t;
  }
}

// Module::state_dict (kirzl's checkpoints) holds the parameter as allocated; GPT-2 files the true
// vocabulary (see GPTSafetensors.RoundTripInTheConv1dLayout).
TEST(GPTVocabPadding, StateDictHoldsThePaddedMatrix) {
  manual_seed(38);
  GPT a(GPTConfig::tiny());
  EXPECT_EQ(a.state_dict().at("wte.weight").shape(), Shape({128, 32}));
  EXPECT_EQ(models::gpt2_state_dict(a).at("wte.weight").shape(), Shape({64, 32}));
  manual_seed(39);
  GPT b(GPTConfig::tiny());
  b.load_state_dict(a.state_dict());
  Tensor idx = tokens({2, 5}, 64, 40);
  EXPECT_EQ(max_abs_diff(a(idx), b(idx)), 0.0);
  EXPECT_EQ(GPTConfig::from_map(GPTConfig{.vocab_padding = 8}.to_map()).vocab_padding, 8);
  EXPECT_KIRZL_ERROR(GPT(GPTConfig{.vocab_padding = 0}), ErrorCode::InvalidArgument, "vocab_padding");
}

// ---- GPT-2 names and safetensors ----

TEST(GPTSafetensors, RoundTripInTheConv1dLayout) {
  manual_seed(20);
  GPT a(GPTConfig::tiny());
  const fs::path path = temp_file("rt.safetensors");
  models::save_gpt2_safetensors(path.string(), a, {{"note", "test"}});
  io::SafetensorsFile f = io::load_safetensors(path.string());
  // GPT-2's Conv1D layout: [in, out].
  EXPECT_EQ(f.tensors.at("h.0.attn.c_attn.weight").shape(), Shape({32, 96}));
  EXPECT_EQ(f.tensors.at("h.1.mlp.c_proj.weight").shape(), Shape({128, 32}));
  EXPECT_EQ(max_abs_diff(f.tensors.at("h.0.attn.c_attn.weight"), a.block(0).attn->c_attn->weight.t()), 0.0);
  EXPECT_EQ(f.tensors.at("wte.weight").shape(), Shape({64, 32}));
  EXPECT_FALSE(f.tensors.contains("lm_head.weight"));
  EXPECT_EQ(f.metadata.at("gpt.n_head"), "2");
  EXPECT_EQ(f.metadata.at("note"), "test");
  EXPECT_EQ(models::gpt2_config_from_safetensors(path.string()), GPTConfig::tiny());

  manual_seed(21);
  GPT b(GPTConfig::tiny());
  {
    NoGradGuard g;
    b.wte->weight.narrow(0, 64, 64).fill_(1.0);  // loading zeroes the padding rows
  }
  Tensor idx = tokens({2, 9}, 64, 22);
  EXPECT_GT(max_abs_diff(a(idx), b(idx)), 1e-3);
  models::load_gpt2_safetensors(path.string(), b);
  EXPECT_EQ(max_abs_diff(a(idx), b(idx)), 0.0);
  EXPECT_EQ(b.wte->weight.shape(), Shape({128, 32}));
  EXPECT_EQ(max_abs_diff(a.wte->weight, b.wte->weight), 0.0);  // padding rows zero in both

  // A config of other padding: recorded in the metadata.
  GPTConfig odd = GPTConfig::tiny();
  odd.vocab_padding = 48;
  models::save_gpt2_safetensors(path.string(), GPT(odd));
  EXPECT_EQ(io::load_safetensors(path.string()).tensors.at("wte.weight").shape(), Shape({64, 32}));
  EXPECT_EQ(models::gpt2_config_from_safetensors(path.string()), odd);
  models::save_gpt2_safetensors(path.string(), a);

  // bf16 on disk: the same model to bf16 precision.
  models::save_gpt2_safetensors(path.string(), a, {}, DType::bf16);
  EXPECT_EQ(io::load_safetensors(path.string()).tensors.at("wte.weight").dtype(), DType::bf16);
  GPT c(GPTConfig::tiny());
  models::load_gpt2_safetensors(path.string(), c);
  EXPECT_LT(max_abs_diff(a(idx), c(idx)), 0.05);
  fs::remove(path);
}

TEST(GPTSafetensors, AcceptsTheTransformerPrefixAndIgnoresBuffers) {
  manual_seed(23);
  GPT a(micro());
  StateDict hf;
  for (const auto& [name, t] : models::gpt2_state_dict(a)) hf.insert("transformer." + name, t.to(DType::f16));
  hf.insert("transformer.h.0.attn.bias", ones({1, 1, 6, 6}));
  hf.insert("transformer.h.1.attn.masked_bias", full({1}, -1e4));
  hf.insert("lm_head.weight", a.wte->weight);
  GPT b(micro());
  models::load_gpt2_state_dict(b, hf);
  Tensor idx = tokens({1, 6}, 11, 24);
  EXPECT_LT(max_abs_diff(a(idx), b(idx)), 1e-2);  // f16 weights
  EXPECT_LT(max_abs_diff(b.wte->weight, a.wte->weight.to(DType::f16)), 1e-6);

  // A file without the "gpt.*" metadata: the config is inferred from the shapes.
  const fs::path path = temp_file("hf.safetensors");
  io::save_safetensors(path.string(), hf);
  EXPECT_EQ(models::gpt2_config_from_safetensors(path.string(), 2), micro());
  EXPECT_EQ(models::gpt2_config_from_safetensors(path.string()).n_head, 1);  // n_embd 8 / 64 -> at least 1
  fs::remove(path);
}

TEST(GPTSafetensors, MissingMisshapedAndUnexpectedTensorsAreNamed) {
  GPT m(micro());
  const Tensor before = m.wte->weight.clone();
  StateDict full_dict = models::gpt2_state_dict(m);
  auto without = [&](const std::string& skip) {
    StateDict d;
    for (const auto& [n, t] : full_dict)
      if (n != skip) d.insert(n, t);
    return d;
  };
  EXPECT_KIRZL_ERROR(models::load_gpt2_state_dict(m, without("h.1.ln_2.bias"), "'x.safetensors'"),
                     ErrorCode::InvalidArgument, "'x.safetensors'", "missing: h.1.ln_2.bias");
  StateDict bad = without("h.0.attn.c_attn.weight");
  bad.insert("h.0.attn.c_attn.weight", zeros({24, 8}));  // Linear layout instead of Conv1D's
  EXPECT_KIRZL_ERROR(models::load_gpt2_state_dict(m, bad), ErrorCode::InvalidArgument,
                     "h.0.attn.c_attn.weight (expected [8, 24] [in, out], got [24, 8])");
  StateDict extra = full_dict;
  extra.insert("h.2.ln_1.weight", ones({8}));
  EXPECT_KIRZL_ERROR(models::load_gpt2_state_dict(m, extra), ErrorCode::InvalidArgument, "unexpected: h.2.ln_1.weight");
  StateDict padded = without("wte.weight");
  padded.insert("wte.weight", zeros({128, 8}));  // the padded parameter instead of GPT-2's rows
  EXPECT_KIRZL_ERROR(models::load_gpt2_state_dict(m, padded), ErrorCode::InvalidArgument,
                     "wte.weight (expected [11, 8], got [128, 8])");
  StateDict ints = without("wpe.weight");
  ints.insert("wpe.weight", zeros({6, 8}, {.dtype = DType::i32}));
  EXPECT_KIRZL_ERROR(models::load_gpt2_state_dict(m, ints), ErrorCode::InvalidArgument, "not floating: wpe.weight");
  EXPECT_EQ(max_abs_diff(m.wte->weight, before), 0.0);  // nothing changed
  EXPECT_KIRZL_ERROR(models::load_gpt2_safetensors("/nonexistent/gpt.safetensors", m), ErrorCode::Io,
                     "/nonexistent/gpt.safetensors");
}

// GPT::fused_loss is GPT::loss through the fused ops: the same loss and the same gradient of every
// parameter (f32, a few layers, a target ignored), with and without biases; and it refuses to
// silently skip dropout.
TEST(GPT, FusedLossEqualsLossAndItsGradients) {
  for (bool bias : {true, false}) {
    manual_seed(21);
    GPTConfig c{.vocab_size = 37, .block_size = 16, .n_layer = 3, .n_head = 2, .n_embd = 16, .bias = bias};
    GPT m(c);
    Tensor idx = tokens({3, 13}, 37, 22), tgt = tokens({3, 13}, 37, 23);
    tgt.view({-1}).narrow(0, 4, 1).fill_(-100);
    Tensor plain = m.loss(idx, tgt);
    plain.backward();
    std::vector<Tensor> grads;
    for (const Tensor& p : m.parameters()) grads.push_back(p.grad().clone());
    m.zero_grad();
    Tensor fused = m.fused_loss(idx, tgt);
    fused.backward();
    EXPECT_NEAR(fused.item(), plain.item(), 1e-5 * std::abs(plain.item())) << "bias " << bias;
    const auto params = m.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const double scale = std::max(1.0, max(abs(grads[i])).item());
      EXPECT_LT(max_abs_diff(params[i].grad(), grads[i]), 1e-5 * scale) << "parameter " << i << ", bias " << bias;
    }
  }
  GPTConfig with_dropout = micro();
  with_dropout.dropout = 0.1;
  GPT d(with_dropout);
  Tensor idx = tokens({1, 4}, 11, 1);
  EXPECT_KIRZL_ERROR(d.fused_loss(idx, idx), ErrorCode::InvalidArgument, "dropout");
  d.eval();
  EXPECT_NO_THROW(d.fused_loss(idx, idx));
}
