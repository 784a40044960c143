// The README's training loop, compiled as it is shown there (tests/docs checks that the README's
// C++ block is this file's text between the markers). Run: mpirun -np 2 build/tutorial/train_loop
#include <kirzl/kirzl.hpp>
using namespace kirzl;

int main() {
  // readme-begin
  auto world = comm::init();                       // mpirun, srun, or one process alone
  nn::Sequential model(nn::Flatten(), nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
  DistributedDataParallel ddp(model, world);       // same start on every rank, averaged gradients
  optim::AdamW opt(model.parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  data::FashionMNIST train;                        // /usr/share/datasets/fashion-mnist
  data::DistributedSampler sampler(train.size(), world, {.seed = 0});
  data::DataLoader loader(train, {.batch_size = 128 / world.size(), .sampler = &sampler});
  for (int epoch = 0; epoch < 2; ++epoch) {
    sampler.set_epoch(epoch);
    for (auto& [x, y] : loader) {
      Tensor loss = cross_entropy(ddp(x), y);
      opt.zero_grad();
      loss.backward();                             // buckets are all-reduced while backward runs
      opt.step();
    }
  }
  if (world.rank() == 0) io::save_checkpoint("ckpt.safetensors", model, &opt);
  // readme-end
}
