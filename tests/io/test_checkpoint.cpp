// Checkpoints: round trips, bit-exact resumption of training, and the errors of mismatched loads.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include <unistd.h>

#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/safetensors.hpp>
#include <kirzl/nn.hpp>
#include <kirzl/ops.hpp>
#include <kirzl/optim.hpp>

#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("kirzl_ckpt_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::shared_ptr<nn::Sequential> make_mlp(int64_t hidden = 16) {
  return std::make_shared<nn::Sequential>(nn::Linear(8, hidden), nn::ReLU(), nn::Linear(hidden, 4));
}

std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

// Every entry of `a` and `b` has the same name, shape, dtype and bytes.
void expect_bitwise_equal(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  auto ib = b.begin();
  for (const auto& [name, t] : a) {
    EXPECT_EQ(name, ib->first);
    EXPECT_EQ(t.dtype(), ib->second.dtype()) << name;
    EXPECT_EQ(t.shape(), ib->second.shape()) << name;
    EXPECT_EQ(bytes_of(t), bytes_of(ib->second)) << name << " differs";
    ++ib;
  }
}

struct Batch {
  Tensor x, y;
};

std::vector<Batch> make_batches(int n) {
  Generator gen(1234);
  std::vector<Batch> out;
  for (int k = 0; k < n; ++k)
    out.push_back({randn({5, 8}, {}, &gen), randint(0, 4, {5}, {.dtype = DType::i64}, &gen)});
  return out;
}

void train(nn::Module& model, optim::Optimizer& opt, const std::vector<Batch>& batches, size_t begin, size_t end) {
  for (size_t k = begin; k < end; ++k) {
    Tensor loss = cross_entropy(model(batches[k].x), batches[k].y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
}

using OptFactory = std::function<std::unique_ptr<optim::Optimizer>(nn::Module&)>;

void check_bit_exact_resume(const std::string& ckpt, const OptFactory& make_opt) {
  const auto batches = make_batches(6);
  manual_seed(7);
  auto straight = make_mlp();
  auto resumed = make_mlp();
  resumed->load_state_dict(straight->state_dict());  // same initial weights

  auto opt_straight = make_opt(*straight);
  train(*straight, *opt_straight, batches, 0, 6);

  {
    auto opt = make_opt(*resumed);
    train(*resumed, *opt, batches, 0, 3);
    save_checkpoint(ckpt, *resumed, opt.get(), {.step = 3, .epoch = 0});
  }
  // A fresh process, as it were: new model (other initial weights), new optimizer.
  auto fresh = make_mlp();
  auto opt_fresh = make_opt(*fresh);
  CheckpointInfo info = load_checkpoint(ckpt, *fresh, opt_fresh.get());
  EXPECT_EQ(info.step, 3);
  train(*fresh, *opt_fresh, batches, 3, 6);

  expect_bitwise_equal(straight->state_dict(), fresh->state_dict());
  expect_bitwise_equal(opt_straight->state_dict(), opt_fresh->state_dict());
}

TEST_F(CheckpointTest, ResumeIsBitExactWithAdamW) {
  check_bit_exact_resume(path("adamw.safetensors"), [](nn::Module& m) {
    return std::make_unique<optim::AdamW>(m.parameters(), optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.05});
  });
}

TEST_F(CheckpointTest, ResumeIsBitExactWithSgdMomentum) {
  check_bit_exact_resume(path("sgd.safetensors"), [](nn::Module& m) {
    return std::make_unique<optim::SGD>(m.parameters(),
                                        optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true});
  });
}

// Dropout draws from the default generator: the checkpoint carries its position, so a resumed run
// draws the masks the uninterrupted run drew, even after the generator was re-seeded meanwhile.
TEST_F(CheckpointTest, ResumeWithDropoutRestoresTheGenerator) {
  const auto batches = make_batches(6);
  auto make = [] { return std::make_shared<nn::Sequential>(nn::Linear(8, 16), nn::Dropout(0.5), nn::ReLU(), nn::Linear(16, 4)); };
  auto sgd = [](nn::Module& m) { return std::make_unique<optim::SGD>(m.parameters(), optim::SGDOptions{.lr = 0.1}); };
  manual_seed(7);
  auto straight = make();
  auto opt_straight = sgd(*straight);
  train(*straight, *opt_straight, batches, 0, 6);

  manual_seed(7);
  auto first = make();
  auto opt_first = sgd(*first);
  train(*first, *opt_first, batches, 0, 3);
  save_checkpoint(path("d.safetensors"), *first, opt_first.get(), {.step = 3});

  manual_seed(12345);
  auto fresh = make();
  auto opt_fresh = sgd(*fresh);
  load_checkpoint(path("d.safetensors"), *fresh, opt_fresh.get());
  train(*fresh, *opt_fresh, batches, 3, 6);
  expect_bitwise_equal(straight->state_dict(), fresh->state_dict());
}

// Inside a GeneratorScope "the default generator" is the thread's own: a checkpoint saves and
// restores that stream and leaves the process-wide one alone (Note [per-thread default generator]).
TEST_F(CheckpointTest, GeneratorRoundTripInsideAScope) {
  auto model = make_mlp();
  manual_seed(77);
  const uint64_t process_offset = default_generator().offset();
  std::vector<float> after_save, after_load;
  std::thread([&] {
    GeneratorScope rng(11);
    randn({10});
    save_checkpoint(path("g.safetensors"), *model);
    after_save = randn({10}).to_vector<float>();
  }).join();
  std::thread([&] {
    GeneratorScope rng(99);
    load_checkpoint(path("g.safetensors"), *model);
    EXPECT_EQ(rng.generator().seed(), 11u);
    after_load = randn({10}).to_vector<float>();
  }).join();
  EXPECT_EQ(after_load, after_save);
  EXPECT_EQ(default_generator().seed(), 77u);
  EXPECT_EQ(default_generator().offset(), process_offset);
}

TEST_F(CheckpointTest, ModelOnlyRoundTripWithInfo) {
  auto model = make_mlp();
  CheckpointInfo info{.step = 1234567890123, .epoch = -1, .config = {{"lr", "0.001"}, {"data", "fashion \"mnist\""}}};
  save_checkpoint(path("m.safetensors"), *model, nullptr, info);

  SafetensorsFile raw = load_safetensors(path("m.safetensors"));
  EXPECT_EQ(raw.metadata.at("format"), "kirzl-checkpoint-1");
  EXPECT_EQ(raw.metadata.at("step"), "1234567890123");
  EXPECT_EQ(raw.metadata.at("config.lr"), "0.001");
  EXPECT_EQ(raw.metadata.count("optimizer"), 0u);
  EXPECT_TRUE(raw.tensors.contains("model.0.weight"));
  EXPECT_TRUE(raw.tensors.contains("model.2.bias"));
  EXPECT_EQ(raw.tensors.size(), 4u);

  auto other = make_mlp();
  CheckpointInfo back = load_checkpoint(path("m.safetensors"), *other);
  EXPECT_EQ(back.step, info.step);
  EXPECT_EQ(back.epoch, info.epoch);
  EXPECT_EQ(back.config, info.config);
  expect_bitwise_equal(model->state_dict(), other->state_dict());
}

TEST_F(CheckpointTest, OptimizerRequestedButAbsentOrOfAnotherKind) {
  auto model = make_mlp();
  save_checkpoint(path("m.safetensors"), *model);
  optim::SGD sgd(model->parameters());
  EXPECT_KIRZL_ERROR(load_checkpoint(path("m.safetensors"), *model, &sgd), ErrorCode::InvalidArgument,
                     "holds no optimizer state", "SGD", path("m.safetensors"));

  optim::AdamW adamw(model->parameters());
  save_checkpoint(path("a.safetensors"), *model, &adamw);
  EXPECT_KIRZL_ERROR(load_checkpoint(path("a.safetensors"), *model, &sgd), ErrorCode::InvalidArgument,
                     "AdamW optimizer", "the optimizer given is SGD");
  // Loading only the model from a full checkpoint is fine.
  EXPECT_NO_THROW(load_checkpoint(path("a.safetensors"), *model));
}

TEST_F(CheckpointTest, MismatchedModelNamesKeysAndChangesNothing) {
  auto small = make_mlp(16);
  save_checkpoint(path("small.safetensors"), *small);
  auto big = make_mlp(32);
  StateDict before;
  for (const auto& [n, t] : big->state_dict()) before.insert(n, t.clone());
  EXPECT_KIRZL_ERROR(load_checkpoint(path("small.safetensors"), *big), ErrorCode::InvalidArgument,
                     path("small.safetensors"), "mis-shaped keys", "0.weight (checkpoint [16, 8], model [32, 8])");
  expect_bitwise_equal(before, big->state_dict());

  auto deeper = std::make_shared<nn::Sequential>(nn::Linear(8, 16), nn::ReLU(), nn::Linear(16, 4), nn::ReLU(),
                                                 nn::Linear(4, 4));
  EXPECT_KIRZL_ERROR(load_checkpoint(path("small.safetensors"), *deeper), ErrorCode::InvalidArgument,
                     "missing keys: 4.weight, 4.bias");
  // Non-strict: the common keys load, the others keep their values.
  Tensor last = deeper->state_dict().at("4.weight").clone();
  load_checkpoint(path("small.safetensors"), *deeper, nullptr, /*strict=*/false);
  EXPECT_EQ(bytes_of(deeper->state_dict().at("0.weight")), bytes_of(small->state_dict().at("0.weight")));
  EXPECT_EQ(bytes_of(deeper->state_dict().at("4.weight")), bytes_of(last));

  auto shallow = std::make_shared<nn::Sequential>(nn::Linear(8, 16));
  EXPECT_KIRZL_ERROR(load_checkpoint(path("small.safetensors"), *shallow), ErrorCode::InvalidArgument,
                     "unexpected keys: 2.weight, 2.bias");
}

TEST_F(CheckpointTest, RejectedOptimizerStateRestoresTheModel) {
  auto model = make_mlp();
  optim::AdamW opt(model->parameters());
  const auto batches = make_batches(1);
  train(*model, opt, batches, 0, 1);
  save_checkpoint(path("full.safetensors"), *model, &opt);

  auto other = make_mlp();
  // An AdamW over only the first layer's parameters: the saved state does not fit it.
  std::vector<Tensor> first = {other->parameters()[0], other->parameters()[1]};
  optim::AdamW partial(first);
  StateDict before;
  for (const auto& [n, t] : other->state_dict()) before.insert(n, t.clone());
  EXPECT_KIRZL_ERROR(load_checkpoint(path("full.safetensors"), *other, &partial), ErrorCode::InvalidArgument,
                     path("full.safetensors"), "AdamW.load_state_dict");
  expect_bitwise_equal(before, other->state_dict());
}

TEST_F(CheckpointTest, NotACheckpoint) {
  auto model = make_mlp();
  StateDict sd;
  sd.insert("0.weight", ones({16, 8}));
  save_safetensors(path("plain.safetensors"), sd);
  EXPECT_KIRZL_ERROR(load_checkpoint(path("plain.safetensors"), *model), ErrorCode::Io, "not a kirzl checkpoint");
  save_safetensors(path("other.safetensors"), sd, {{"format", "pt"}});
  EXPECT_KIRZL_ERROR(load_checkpoint(path("other.safetensors"), *model), ErrorCode::Io, "has format 'pt'",
                     "kirzl-checkpoint-1");
  save_safetensors(path("step.safetensors"), sd, {{"format", "kirzl-checkpoint-1"}, {"step", "12x"}, {"epoch", "0"}});
  EXPECT_KIRZL_ERROR(load_checkpoint(path("step.safetensors"), *model), ErrorCode::Io, "metadata 'step' is '12x'");
  save_safetensors(path("stray.safetensors"), sd, {{"format", "kirzl-checkpoint-1"}, {"step", "1"}, {"epoch", "0"}});
  EXPECT_KIRZL_ERROR(load_checkpoint(path("stray.safetensors"), *model), ErrorCode::InvalidArgument,
                     "neither model.* nor optim.*", "'0.weight'");
  EXPECT_KIRZL_ERROR(load_checkpoint(path("missing.safetensors"), *model), ErrorCode::Io, "No such file");
}

TEST_F(CheckpointTest, SaveFailureKeepsThePreviousCheckpoint) {
  auto model = make_mlp();
  save_checkpoint(path("c.safetensors"), *model, nullptr, {.step = 1});
  EXPECT_KIRZL_ERROR(save_checkpoint(path("nodir/c.safetensors"), *model), ErrorCode::Io, "No such file or directory");
  EXPECT_EQ(load_checkpoint(path("c.safetensors"), *model).step, 1);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"c.safetensors"});
}

}  // namespace
}  // namespace kirzl::io
