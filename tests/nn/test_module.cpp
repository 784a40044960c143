#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <kirzl/kirzl.hpp>
#include <kirzl/nn.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;
namespace nn = kirzl::nn;

namespace {
// A user-defined module with parameters, a buffer and submodules.
class Block : public nn::Module {
 public:
  Block() {
    scale = register_parameter("scale", ones({4}));
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 3));
    steps = register_buffer("steps", zeros({}, {.dtype = DType::i64}));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(3));
  }
  Tensor forward(const Tensor& x) override { return (*norm)((*fc)(x * scale)); }
  std::string repr() const override { return "Block"; }
  Tensor scale, steps;
  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::LayerNorm> norm;
};
}  // namespace

TEST(Module, NamedParametersInRegistrationOrder) {
  Block b;
  std::vector<std::string> names;
  for (auto& [n, t] : b.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"scale", "fc.weight", "fc.bias", "norm.weight", "norm.bias"}));
  EXPECT_EQ(b.num_parameters(), 4 + 12 + 3 + 3 + 3);
  for (auto& t : b.parameters()) EXPECT_TRUE(t.requires_grad());
  ASSERT_EQ(b.named_buffers().size(), 1u);
  EXPECT_EQ(b.named_buffers()[0].first, "steps");
  auto sd = b.state_dict();
  EXPECT_EQ(sd.size(), 6u);
  EXPECT_TRUE(sd.contains("norm.bias"));
}

TEST(Module, SequentialNamesChainsAndPrints) {
  manual_seed(0);
  nn::Sequential model(nn::Flatten(), nn::Linear(6, 5), nn::ReLU(), nn::Linear(5, 2));
  std::vector<std::string> names;
  for (auto& [n, t] : model.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias"}));
  auto x = randn({4, 2, 3});
  auto& l1 = model.at<nn::Linear>(1);
  auto& l3 = model.at<nn::Linear>(3);
  auto expected = linear(relu(linear(x.reshape({4, 6}), l1.weight, l1.bias)), l3.weight, l3.bias);
  auto y = model(x);
  EXPECT_EQ(y.shape(), (Shape{4, 2}));
  EXPECT_EQ(y.to_vector<float>(), expected.to_vector<float>());
  EXPECT_NE(model.str().find("(1): Linear(in_features=6, out_features=5, bias=true)"), std::string::npos) << model.str();
  EXPECT_KIRZL_ERROR(model.at<nn::Linear>(0), ErrorCode::InvalidArgument, "Flatten");
  EXPECT_KIRZL_ERROR(model[7], ErrorCode::InvalidArgument, "out of range");
}

TEST(Module, SameSeedSameModel) {
  manual_seed(123);
  nn::Linear a(16, 8);
  manual_seed(123);
  nn::Linear b(16, 8);
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  EXPECT_EQ(a.bias.to_vector<float>(), b.bias.to_vector<float>());
  nn::Linear c(16, 8);
  EXPECT_NE(a.weight.to_vector<float>(), c.weight.to_vector<float>());
}

TEST(Module, DefaultInitBoundsFollowPyTorch) {
  manual_seed(1);
  nn::Linear l(400, 300);
  double bound = 1.0 / std::sqrt(400.0);
  EXPECT_LE(max(abs(l.weight)).item(), bound);
  EXPECT_GT(max(abs(l.weight)).item(), 0.99 * bound);
  // U(-b, b) has variance b^2 / 3.
  EXPECT_NEAR(var(l.weight.to(DType::f64)).item(), bound * bound / 3, 0.03 * bound * bound / 3);
  nn::Conv2d conv(8, 16, 3, {.groups = 2});
  double cbound = 1.0 / std::sqrt(4.0 * 9.0);
  EXPECT_LE(max(abs(conv.weight)).item(), cbound);
  EXPECT_EQ(conv.weight.shape(), (Shape{16, 4, 3, 3}));
  nn::Embedding e(1000, 64);
  EXPECT_NEAR(var(e.weight.to(DType::f64)).item(), 1.0, 0.05);
}

TEST(Module, LoadStateDictCopiesInPlaceAndReportsEveryProblem) {
  manual_seed(0);
  Block a;
  manual_seed(1);
  Block b;
  Tensor handle = b.fc->weight;  // e.g. held by an optimizer
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(handle.to_vector<float>(), a.fc->weight.to_vector<float>());
  EXPECT_TRUE(handle.is_same(b.fc->weight));

  StateDict bad = a.state_dict();
  StateDict broken;
  for (auto& [n, t] : bad)
    if (n != "scale") broken.insert(n, n == "fc.bias" ? zeros({5}) : t);
  broken.insert("extra.weight", zeros({1}));
  EXPECT_KIRZL_ERROR(b.load_state_dict(broken), ErrorCode::InvalidArgument, "missing keys: scale",
                     "unexpected keys: extra.weight", "fc.bias (checkpoint [5], model [3])");
  // check_state_dict: the same error, and a dict that fits passes without being copied.
  EXPECT_KIRZL_ERROR(b.check_state_dict(broken), ErrorCode::InvalidArgument, "missing keys: scale",
                     "unexpected keys: extra.weight", "fc.bias (checkpoint [5], model [3])");
  StateDict other;
  for (auto& [n, t] : bad) other.insert(n, full(t.shape(), 7.0));
  b.check_state_dict(other);
  EXPECT_EQ(b.fc->bias.to_vector<float>(), a.fc->bias.to_vector<float>());
  // Nothing was changed by the failed load.
  EXPECT_EQ(b.fc->bias.to_vector<float>(), a.fc->bias.to_vector<float>());
  StateDict partial;
  partial.insert("scale", full({4}, 2.0));
  b.load_state_dict(partial, /*strict=*/false);
  EXPECT_EQ(b.scale.to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
}

TEST(Module, ToDtypeKeepsHandlesAndTrainEvalPropagates) {
  Block b;
  Tensor w = b.fc->weight;
  b.to(DType::f64);
  EXPECT_EQ(w.dtype(), DType::f64);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_EQ(b.steps.dtype(), DType::i64);  // integer buffers keep their dtype
  auto y = b(randn({2, 4}, {.dtype = DType::f64}));
  EXPECT_EQ(y.dtype(), DType::f64);
  b.eval();
  EXPECT_FALSE(b.is_training());
  EXPECT_FALSE(b.fc->is_training());
  b.train();
  EXPECT_TRUE(b.norm->is_training());
}

TEST(Module, ZeroGrad) {
  nn::Linear l(3, 2);
  sum(l(ones({1, 3}))).backward();
  ASSERT_TRUE(l.weight.grad().defined());
  Tensor g = l.weight.grad();
  l.zero_grad(/*set_to_none=*/false);
  EXPECT_TRUE(l.weight.grad().is_same(g));
  EXPECT_EQ(sum(abs(g)).item(), 0.0);
  l.zero_grad();
  EXPECT_FALSE(l.weight.grad().defined());
}

TEST(Module, BadRegistrations) {
  struct Bad : nn::Module {
    void twice() {
      register_parameter("w", zeros({1}));
      register_parameter("w", zeros({1}));
    }
    void dotted() { register_buffer("a.b", zeros({1})); }
  };
  Bad m;
  EXPECT_KIRZL_ERROR(m.twice(), ErrorCode::InvalidArgument, "'w'", "already registered");
  EXPECT_KIRZL_ERROR(m.dotted(), ErrorCode::InvalidArgument, "a.b");
  EXPECT_KIRZL_ERROR(nn::Linear(0, 3), ErrorCode::InvalidArgument, "positive");
  EXPECT_KIRZL_ERROR(nn::Conv2d(3, 4, 3, {.groups = 2}), ErrorCode::InvalidArgument, "groups=2");
  EXPECT_KIRZL_ERROR(nn::ModuleList()(zeros({1})), ErrorCode::Unsupported, "forward");
}

TEST(ModuleHooks, ForwardPreHooksRunInRegistrationOrderBeforeForward) {
  nn::Linear l(4, 3);
  std::vector<std::string> log;
  l.register_forward_pre_hook([&](nn::Module& m) {
    EXPECT_EQ(&m, &l);
    log.push_back("a");
  });
  l.register_forward_pre_hook([&](nn::Module&) {
    log.push_back("b");
    l.weight.detach().fill_(0.0);  // runs before forward: the output sees it
  });
  Tensor y = l(ones({2, 4}));
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sum(abs(y - l.bias)).item(), 0.0);
  l.forward(ones({2, 4}));  // forward() itself runs no hook
  EXPECT_EQ(log.size(), 2u);
  l.run_forward_pre_hooks();
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "a", "b"}));
}

TEST(ModuleHooks, ContainersAndBuiltInModelsCallTheirChildrenThroughTheirHooks) {
  auto seq = std::make_shared<nn::Sequential>(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 2));
  std::vector<std::string> log;
  for (const auto& [name, child] : seq->named_children())
    child->register_forward_pre_hook([&log, name = name](nn::Module&) { log.push_back(name); });
  Block block;  // a user module calling its children through operator()
  block.fc->register_forward_pre_hook([&](nn::Module&) { log.push_back("fc"); });
  block.norm->register_forward_pre_hook([&](nn::Module&) { log.push_back("norm"); });
  (*seq)(ones({1, 4}));
  block(ones({1, 4}));
  EXPECT_EQ(log, (std::vector<std::string>{"0", "1", "2", "fc", "norm"}));
  // GPT: each block and sublayer, ln_f, and the embeddings it reads, once per loss() and per
  // fused_loss() (which reads the blocks' weights itself and runs their hooks).
  models::GPT gpt({.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 2, .n_embd = 8});
  std::map<std::string, int> calls;
  std::vector<std::pair<std::string, nn::Module*>> mods{{"wte", gpt.wte.get()}, {"wpe", gpt.wpe.get()},
                                                        {"ln_f", gpt.ln_f.get()}};
  for (size_t i = 0; i < 2; ++i) {
    auto& b = gpt.block(i);
    const std::string p = "h." + std::to_string(i) + ".";
    for (auto [n, m] : std::vector<std::pair<std::string, nn::Module*>>{
             {"", &b}, {"ln_1", b.ln_1.get()}, {"attn", b.attn.get()}, {"attn.c_attn", b.attn->c_attn.get()},
             {"attn.c_proj", b.attn->c_proj.get()}, {"ln_2", b.ln_2.get()}, {"mlp", b.mlp.get()},
             {"mlp.c_fc", b.mlp->c_fc.get()}, {"mlp.c_proj", b.mlp->c_proj.get()}})
      mods.emplace_back(p + n, m);
  }
  for (auto& [n, m] : mods) m->register_forward_pre_hook([&calls, n = n](nn::Module&) { ++calls[n]; });
  Tensor idx = zeros({2, 5}, {.dtype = DType::i64});
  gpt.eval();
  for (int path = 0; path < 2; ++path) {
    calls.clear();
    if (path == 0) gpt.loss(idx, idx);
    else gpt.fused_loss(idx, idx);
    for (auto& [n, m] : mods) EXPECT_EQ(calls[n], 1) << n << (path == 0 ? " in loss()" : " in fused_loss()");
  }
}

TEST(ModuleHooks, RemovalAndHandlesAcrossAMove) {
  nn::Linear l(2, 2);
  int a = 0, b = 0;
  const uint64_t ha = l.register_forward_pre_hook([&](nn::Module&) { ++a; });
  const uint64_t hb = l.register_forward_pre_hook([&](nn::Module&) { ++b; });
  EXPECT_NE(ha, hb);
  l(ones({1, 2}));
  EXPECT_TRUE(l.remove_forward_pre_hook(ha));
  EXPECT_FALSE(l.remove_forward_pre_hook(ha)) << "removed already";
  l(ones({1, 2}));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  // The hooks move with the module, and the handle still names them there.
  nn::Linear moved(std::move(l));
  int seen_by_moved = 0;
  moved.register_forward_pre_hook([&](nn::Module& m) { seen_by_moved += &m == &moved; });
  moved(ones({1, 2}));
  EXPECT_EQ(b, 3);
  EXPECT_EQ(seen_by_moved, 1);
  EXPECT_TRUE(moved.remove_forward_pre_hook(hb));
  moved(ones({1, 2}));
  EXPECT_EQ(b, 3);
  nn::Linear other(2, 2);
  EXPECT_FALSE(other.remove_forward_pre_hook(hb)) << "a handle is only its module's";
}

TEST(ModuleHooks, AHookMayRemoveItselfAndAThrowingHookStopsTheCall) {
  nn::Linear l(2, 2);
  int once = 0, after = 0;
  uint64_t h = 0;
  h = l.register_forward_pre_hook([&](nn::Module& m) {
    ++once;
    m.remove_forward_pre_hook(h);
  });
  l.register_forward_pre_hook([&](nn::Module&) { ++after; });
  l(ones({1, 2}));
  l(ones({1, 2}));
  EXPECT_EQ(once, 1);
  EXPECT_EQ(after, 2);
  l.register_forward_pre_hook([](nn::Module&) { KIRZL_FAIL(ErrorCode::InvalidArgument, "hook says no"); });
  int later = 0;
  l.register_forward_pre_hook([&](nn::Module&) { ++later; });
  EXPECT_KIRZL_ERROR(l(ones({1, 2})), ErrorCode::InvalidArgument, "hook says no");
  EXPECT_EQ(later, 0);
  EXPECT_KIRZL_ERROR(l.register_forward_pre_hook({}), ErrorCode::InvalidArgument, "empty");
}
