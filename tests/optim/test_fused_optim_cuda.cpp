// The fused multi-tensor optimizer steps on CUDA against the CPU optimizers: SGD, Adam, AdamW,
// LAMB over many parameters of odd sizes, param groups with their own lr, f32 / f64 parameters
// and bf16 / f16 parameters with f32 masters, misaligned gradients, launch counts, state dicts.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include <kirzl/kirzl.hpp>

#include "kernels/optim_update.h"
#include "support/cuda_compare.hpp"

namespace kirzl {
namespace {

using testing::all_close;
using testing::Tolerance;

const std::vector<Shape> kShapes = {{1}, {3}, {17}, {257}, {1000003}, {33, 65}, {65537}, {4, 4}, {131075}, {5, 1, 3}};

/// The same parameters on the CPU and on CUDA (leaves that require grad).
struct Twin {
  std::vector<Tensor> cpu, gpu;
};

Twin make_twin(const std::vector<Shape>& shapes, DType dtype, uint64_t seed) {
  Generator gen(seed);
  Twin t;
  for (const Shape& s : shapes) {
    Tensor c = randn(s, {}, &gen).to(dtype);
    Tensor g = c.to(Device::cuda());
    t.cpu.push_back(c.requires_grad_());
    t.gpu.push_back(g.requires_grad_());
  }
  return t;
}

/// Fresh random gradients (the same values on both sides) in `grad_dtype`. With `misaligned`,
/// each CUDA gradient is a view that starts one element into its buffer (as gradients that are
/// views into DDP buckets can), so the kernels take their unvectorised path.
void set_grads(Twin& t, DType grad_dtype, uint64_t seed, bool misaligned = false, int skip = -1) {
  Generator gen(seed);
  for (size_t k = 0; k < t.cpu.size(); ++k) {
    if (static_cast<int>(k) == skip) {  // this parameter gets no gradient this step
      t.cpu[k].set_grad(Tensor());
      t.gpu[k].set_grad(Tensor());
      continue;
    }
    Tensor g = randn(t.cpu[k].shape(), {}, &gen).to(grad_dtype);
    t.cpu[k].set_grad(g);
    if (misaligned) {
      Tensor flat = empty({g.numel() + 1}, {.dtype = grad_dtype, .device = Device::cuda()});
      Tensor view = flat.slice(0, 1, g.numel() + 1).view(g.shape());
      view.copy_(g);
      t.gpu[k].set_grad(view);
    } else {
      t.gpu[k].set_grad(g.to(Device::cuda()));
    }
  }
}

std::vector<optim::ParamGroup> groups_of(const std::vector<Tensor>& ps) {
  // Two groups with their own lr (and the second with its own weight decay).
  std::vector<Tensor> a(ps.begin(), ps.begin() + ps.size() / 2), b(ps.begin() + ps.size() / 2, ps.end());
  return {optim::ParamGroup{.params = a}, optim::ParamGroup{.params = b, .lr = 0.003, .weight_decay = 0.05}};
}

using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<optim::ParamGroup>)>;

/// Expects every entry of the CPU optimizer's state dict in the CUDA one, within `tol`.
void expect_same_state(const optim::Optimizer& cpu, const optim::Optimizer& gpu, Tolerance tol) {
  StateDict a = cpu.state_dict(), b = gpu.state_dict();
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    const Tensor* other = b.find(key);
    ASSERT_NE(other, nullptr) << key;
    EXPECT_TRUE(all_close(*other, t, tol)) << key;
  }
}

/// kSteps steps of both optimizers on the twin, comparing parameters after each step and the
/// whole state at the end. The lr decays each step (as a scheduler would set it).
void run_and_compare(const Factory& make, DType param_dtype, DType grad_dtype, Tolerance param_tol,
                     Tolerance state_tol, bool misaligned = false) {
  const int kSteps = 10;
  Twin t = make_twin(kShapes, param_dtype, 42);
  auto cpu = make(groups_of(t.cpu));
  auto gpu = make(groups_of(t.gpu));
  for (int s = 0; s < kSteps; ++s) {
    // Parameter 2 skips step 3: its step count (and bias correction) then differs from the rest.
    set_grads(t, grad_dtype, 100 + s, misaligned, s == 3 ? 2 : -1);
    cpu->step();
    gpu->step();
    for (size_t k = 0; k < t.cpu.size(); ++k)
      ASSERT_TRUE(all_close(t.gpu[k], t.cpu[k], param_tol)) << cpu->name() << " step " << s << " parameter " << k;
    for (int64_t g = 0; g < cpu->num_groups(); ++g) {
      cpu->set_lr(cpu->lr(g) * 0.9, g);
      gpu->set_lr(gpu->lr(g) * 0.9, g);
    }
  }
  expect_same_state(*cpu, *gpu, state_tol);
}

const Tolerance kF32{1e-6, 1e-6};
const Tolerance kF64{1e-12, 1e-12};
const Tolerance kBF16{1e-2, 1e-2};
const Tolerance kF16{2e-3, 1e-3};

Factory sgd(optim::SGDOptions o) {
  return [o](std::vector<optim::ParamGroup> g) { return std::make_unique<optim::SGD>(std::move(g), o); };
}
Factory adam(optim::AdamOptions o) {
  return [o](std::vector<optim::ParamGroup> g) { return std::make_unique<optim::Adam>(std::move(g), o); };
}
Factory adamw(optim::AdamWOptions o) {
  return [o](std::vector<optim::ParamGroup> g) { return std::make_unique<optim::AdamW>(std::move(g), o); };
}
Factory lamb(optim::LAMBOptions o) {
  return [o](std::vector<optim::ParamGroup> g) { return std::make_unique<optim::LAMB>(std::move(g), o); };
}

TEST(FusedOptimCuda, SgdMomentumNesterovWeightDecay) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(sgd({.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true}), DType::f32, DType::f32,
                  kF32, kF32);
}

TEST(FusedOptimCuda, SgdPlainDampenedAndMaximize) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(sgd({.lr = 0.02}), DType::f32, DType::f32, kF32, kF32);
  run_and_compare(sgd({.lr = 0.02, .momentum = 0.8, .dampening = 0.3, .maximize = true}), DType::f32, DType::f32,
                  kF32, kF32);
}

TEST(FusedOptimCuda, AdamAmsgradL2) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adam({.lr = 0.01, .weight_decay = 0.01, .amsgrad = true}), DType::f32, DType::f32, kF32, kF32);
  run_and_compare(adam({.lr = 0.01, .betas = {0.8, 0.99}, .maximize = true}), DType::f32, DType::f32, kF32, kF32);
}

TEST(FusedOptimCuda, AdamW) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adamw({.lr = 0.01, .weight_decay = 0.1}), DType::f32, DType::f32, kF32, kF32);
}

TEST(FusedOptimCuda, Lamb) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(lamb({.lr = 0.01, .weight_decay = 0.01}), DType::f32, DType::f32, kF32, kF32);
}

// Note [sharded LAMB on CUDA]: LAMB over pieces of whole tensors (as DDPOptions::shard gives each
// rank) takes each whole tensor's trust ratio; on CUDA it must equal the CPU's LAMB over the whole
// tensors. Each whole tensor here is cut into two pieces, the multi-chunk one mid-chunk, and one
// process holds both (the "all-reduce" of the partial norms is the identity).
TEST(FusedOptimCuda, LambOverPiecesOfWholeTensorsEqualsTheCpuOverTheWholeTensors) {
  KIRZL_REQUIRE_GPU();
  const std::vector<Shape> shapes = {{257}, {33, 65}, {2 * 65536 + 4099}};
  const optim::LAMBOptions o{.lr = 0.01, .weight_decay = 0.01};
  Generator gen(5);
  std::vector<Tensor> whole, pieces;
  std::vector<int64_t> index, cut;
  for (size_t w = 0; w < shapes.size(); ++w) {
    Tensor t = randn(shapes[w], {}, &gen);
    whole.push_back(t.clone().requires_grad_());
    const Tensor flat = t.reshape({-1});
    const int64_t n = flat.numel(), at = n == 2 * 65536 + 4099 ? 65536 + 100 : n / 3;
    cut.push_back(at);
    pieces.push_back(flat.narrow(0, 0, at).contiguous().to(Device::cuda()).requires_grad_());
    pieces.push_back(flat.narrow(0, at, n - at).contiguous().to(Device::cuda()).requires_grad_());
    index.insert(index.end(), {static_cast<int64_t>(w), static_cast<int64_t>(w)});
  }
  optim::LAMB cpu({optim::ParamGroup{.params = whole}}, o), gpu({optim::ParamGroup{.params = pieces}}, o);
  int reductions = 0;
  gpu.set_whole_tensors({.index = index,
                         .count = static_cast<int64_t>(shapes.size()),
                         .all_reduce_sum = [&](Tensor& sums) {
                           EXPECT_EQ(sums.numel(), 2 * static_cast<int64_t>(shapes.size()));
                           ++reductions;
                         }});
  for (int step = 0; step < 4; ++step) {
    for (size_t w = 0; w < whole.size(); ++w) {
      Tensor g = randn(shapes[w], {}, &gen);
      whole[w].set_grad(g);
      const Tensor flat = g.reshape({-1});
      const int64_t n = flat.numel(), at = cut[w];
      pieces[2 * w].set_grad(flat.narrow(0, 0, at).contiguous().to(Device::cuda()));
      pieces[2 * w + 1].set_grad(flat.narrow(0, at, n - at).contiguous().to(Device::cuda()));
    }
    cpu.step();
    gpu.step();
  }
  EXPECT_EQ(reductions, 4);
  for (size_t w = 0; w < whole.size(); ++w) {
    const Tensor got = cat({pieces[2 * w].to(Device::cpu()), pieces[2 * w + 1].to(Device::cpu())}, 0);
    EXPECT_TRUE(all_close(got, whole[w].reshape({-1}), kF32)) << "whole tensor " << w;
  }
}

TEST(FusedOptimCuda, MisalignedGradientsTakeTheScalarPath) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adamw({.lr = 0.01}), DType::f32, DType::f32, kF32, kF32, /*misaligned=*/true);
  run_and_compare(sgd({.lr = 0.01, .momentum = 0.9}), DType::bf16, DType::bf16, kBF16, kF32, /*misaligned=*/true);
  run_and_compare(lamb({.lr = 0.01}), DType::f32, DType::f32, kF32, kF32, /*misaligned=*/true);
}

TEST(FusedOptimCuda, Float64Parameters) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adamw({.lr = 0.01, .amsgrad = true}), DType::f64, DType::f64, kF64, kF64);
  run_and_compare(lamb({.lr = 0.01}), DType::f64, DType::f64, kF64, kF64);
}

// 16-bit parameters: the masters (in the state) are compared in f32; the parameters are their
// rounding, which may differ by one unit where a master sits at a rounding boundary.
TEST(FusedOptimCuda, BFloat16ParametersWithFloat32Masters) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adamw({.lr = 0.01, .weight_decay = 0.1}), DType::bf16, DType::bf16, kBF16, kF32);
  run_and_compare(sgd({.lr = 0.01, .momentum = 0.9, .nesterov = true}), DType::bf16, DType::bf16, kBF16, kF32);
  run_and_compare(lamb({.lr = 0.01, .weight_decay = 0.01}), DType::bf16, DType::bf16, kBF16, kF32);
}

// The kernels also take f32 gradients for 16-bit parameters (set_grad does not, so this calls
// the kernel directly): the master must follow an f32 AdamW on the CPU fed the same gradients.
TEST(FusedOptimCuda, KernelTakesFloat32GradientsOfBFloat16Parameters) {
  KIRZL_REQUIRE_GPU();
  Twin t = make_twin(kShapes, DType::f32, 77);
  std::vector<Tensor> masters_cpu;
  for (const Tensor& p : t.cpu) masters_cpu.push_back(p.detach().clone().requires_grad_());
  optim::AdamW ref(masters_cpu, {.lr = 0.01, .weight_decay = 0.1});
  kernels::OptimLists lists;
  for (const Tensor& p : t.gpu) {
    lists.masters.push_back(p.detach().clone());
    lists.params.push_back(p.detach().to(DType::bf16));
    lists.state[0].push_back(zeros(p.shape(), {.device = Device::cuda()}));
    lists.state[1].push_back(zeros(p.shape(), {.device = Device::cuda()}));
  }
  for (int s = 1; s <= 5; ++s) {
    Generator gen(500 + s);
    lists.grads.clear();
    for (size_t k = 0; k < t.cpu.size(); ++k) {
      Tensor g = randn(t.cpu[k].shape(), {}, &gen);
      masters_cpu[k].set_grad(g);
      lists.grads.push_back(g.to(Device::cuda()));
    }
    ref.step();
    kernels::multi_tensor_adam(lists, std::vector<int64_t>(t.cpu.size(), s),
                                     {.lr = 0.01, .weight_decay = 0.1, .decoupled = true});
  }
  for (size_t k = 0; k < t.cpu.size(); ++k) {
    EXPECT_TRUE(all_close(lists.masters[k], masters_cpu[k], kF32)) << "master " << k;
    // The parameter is exactly the master rounded to bf16.
    EXPECT_TRUE(all_close(lists.params[k], lists.masters[k].to(DType::bf16).to(Device::cpu()), {0, 0})) << k;
  }
}

TEST(FusedOptimCuda, Float16ParametersWithFloat32Masters) {
  KIRZL_REQUIRE_GPU();
  run_and_compare(adam({.lr = 0.01, .amsgrad = true}), DType::f16, DType::f16, kF16, kF32);
  run_and_compare(sgd({.lr = 0.01, .momentum = 0.5}), DType::f16, DType::f16, kF16, kF32);
}

TEST(FusedOptimCuda, GPT2LikeParameterSetTakesOneLaunchPerStep) {
  KIRZL_REQUIRE_GPU();
  // 148 tensors (more than fit one launch with a smaller table) of a few sizes, about 2M
  // elements: one class, fewer chunks than kMaxBlocks, so AdamW needs exactly one launch.
  std::vector<Shape> shapes;
  for (int i = 0; i < 148; ++i) shapes.push_back(i % 4 == 0 ? Shape{96, 64} : Shape{64 + i});
  Twin t = make_twin(shapes, DType::f32, 5);
  optim::AdamW cpu(t.cpu, {.lr = 0.01}), gpu(t.gpu, {.lr = 0.01});
  for (int s = 0; s < 3; ++s) {
    set_grads(t, DType::f32, 7 + s);
    cpu.step();
    const int64_t before = kernels::multi_tensor_launch_count.kernel(DeviceType::CUDA)();
    gpu.step();
    EXPECT_EQ(kernels::multi_tensor_launch_count.kernel(DeviceType::CUDA)() - before, 1);
  }
  for (size_t k = 0; k < t.cpu.size(); ++k) ASSERT_TRUE(all_close(t.gpu[k], t.cpu[k], kF32)) << k;
}

TEST(FusedOptimCuda, ManyTensorsAndMoreChunksThanOneLaunchHolds) {
  KIRZL_REQUIRE_GPU();
  // 300 small tensors (more than kMaxTensors = 160) and one tensor of more than kMaxBlocks
  // (2048) chunks of 65536, which is cut between launches and continues in slot 0.
  std::vector<Shape> shapes;
  for (int i = 0; i < 300; ++i) shapes.push_back(Shape{1 + (i * 37) % 301});
  shapes.push_back(Shape{2048 * 65536 + 12347});
  shapes.push_back(Shape{5});
  Twin t = make_twin(shapes, DType::f32, 9);
  optim::SGD cpu(t.cpu, {.lr = 0.1, .momentum = 0.9}), gpu(t.gpu, {.lr = 0.1, .momentum = 0.9});
  for (int s = 0; s < 2; ++s) {
    set_grads(t, DType::f32, 11 + s);
    cpu.step();
    const int64_t before = kernels::multi_tensor_launch_count.kernel(DeviceType::CUDA)();
    gpu.step();
    EXPECT_GE(kernels::multi_tensor_launch_count.kernel(DeviceType::CUDA)() - before, 2);
  }
  for (size_t k = 0; k < t.cpu.size(); ++k) ASSERT_TRUE(all_close(t.gpu[k], t.cpu[k], kF32)) << k;
}

TEST(FusedOptimCuda, StateDictMovesBetweenDevices) {
  KIRZL_REQUIRE_GPU();
  Twin t = make_twin(kShapes, DType::bf16, 21);
  optim::AdamW cpu(t.cpu, {.lr = 0.01}), gpu(t.gpu, {.lr = 0.01});
  for (int s = 0; s < 3; ++s) {
    set_grads(t, DType::bf16, 300 + s);
    cpu.step();
    gpu.step();
  }
  // A second CUDA optimizer restored from the CPU one's state (masters included) continues like it.
  Twin t2 = make_twin(kShapes, DType::bf16, 21);
  {
    NoGradGuard no_grad;  // the parameters are leaves that require grad
    for (size_t k = 0; k < t.cpu.size(); ++k) t2.gpu[k].copy_(t.cpu[k]);
  }
  optim::AdamW gpu2(t2.gpu, {.lr = 0.01});
  gpu2.load_state_dict(cpu.state_dict());
  EXPECT_TRUE(gpu2.state_dict().at("state.0.master").device().is_cuda());
  for (int s = 3; s < 6; ++s) {
    set_grads(t, DType::bf16, 300 + s);
    for (size_t k = 0; k < t.cpu.size(); ++k) t2.gpu[k].set_grad(t.gpu[k].grad().clone());
    cpu.step();
    gpu2.step();
  }
  for (size_t k = 0; k < t.cpu.size(); ++k) EXPECT_TRUE(all_close(t2.gpu[k], t.cpu[k], kBF16)) << k;
  expect_same_state(cpu, gpu2, kF32);
}

TEST(FusedOptimCuda, GradientOnAnotherDeviceIsRejected) {
  KIRZL_REQUIRE_GPU();
  Tensor p = zeros({3}, {.device = Device::cuda()}).requires_grad_();
  optim::SGD opt({p});
  try {
    p.set_grad(ones({3}));  // set_grad may refuse it already; otherwise step() must
    opt.step();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kirzl
