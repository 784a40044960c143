// Tutorial step 4 (docs/tutorial/04-reading-a-timeline.md): a data-parallel training run that
// records a timeline. Run it under mpirun with KIRZL_TIMELINE set:
//
//   KIRZL_TIMELINE=trace mpirun -np 2 build/tutorial/ddp_timeline
//
// Each rank writes trace.rank<r>.json (Chrome trace format): forward, backward and the optimizer
// step on lane 0, every bucket's all-reduce on lane 1. The model is a deeper MLP than the
// Fashion-MNIST example's, and the buckets are small, so that several buckets exist and the
// first ones are all-reduced while backward still computes the gradients of the early layers.
#include <kirzl/kirzl.hpp>

#include <cstdio>

using namespace kirzl;

int main() {
  comm::ProcessGroup world = comm::init();  // mpirun's ranks, or one process alone
  set_num_threads(1);                       // one core per rank
  manual_seed(0);

  nn::Sequential model(nn::Flatten(), nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 512), nn::ReLU(),
                       nn::Linear(512, 512), nn::ReLU(), nn::Linear(512, 10));
  // Buckets of at most 0.5 MiB (the default is 25): each 512x512 layer gets its own bucket.
  DistributedDataParallel ddp(model, world, {.bucket_cap_mb = 0.5, .first_bucket_cap_mb = 0.1});
  optim::AdamW opt(model.parameters(), {.lr = 1e-3, .weight_decay = 0.01});

  data::FashionMNIST train(data::kFashionMnistDir, data::Split::Train, {.limit = 2560});
  data::DistributedSampler sampler(train.size(), world, {.shuffle = true, .seed = 0});
  data::DataLoader loader(train, {.batch_size = 128 / world.size(), .sampler = &sampler});

  double hidden_ms = 0, exposed_ms = 0, loss_value = 0;
  int steps = 0;
  for (auto& [x, y] : loader) {
    Tensor loss = cross_entropy(ddp(x), y);
    opt.zero_grad();
    loss.backward();  // buckets are all-reduced while backward runs
    {
      auto span = ddp.trace("optimizer step");  // a span of our own in the timeline
      opt.step();
    }
    const DDPStepStats& s = ddp.last_step_stats();
    hidden_ms += s.comm_hidden_ms;
    exposed_ms += s.comm_exposed_ms;
    loss_value = loss.item();
    ++steps;
  }
  if (world.rank() == 0)
    std::printf("{\"steps\": %d, \"buckets\": %zu, \"final_loss\": %.4f, \"comm_hidden_ms\": %.1f, \"comm_exposed_ms\": %.1f, \"world_size\": %d}\n",
                steps, ddp.buckets().size(), loss_value, hidden_ms, exposed_ms, world.size());
  return 0;
}
