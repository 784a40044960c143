// kirzl's main demo: Fashion-MNIST with an MLP or a small CNN, data-parallel on any number of ranks.
//
//   ./build/examples/fashion_mnist                       # one process, the MLP
//   mpirun -np 2 ./build/examples/fashion_mnist --model cnn
//   mpirun -np 2 ./build/examples/fashion_mnist --shard gradients   # ZeRO-2: each rank keeps a share
//
// --batch-size is the *global* batch: each of N ranks takes batch/N examples per step and the
// reducer averages their gradients, so one command trains the same model at any world size.
// --shard optimizer|gradients keeps only a share of the optimizer state (and of the reduced
// gradients) on each rank; a checkpoint of several ranks or of a sharded run is a directory that
// --resume reads at any world size. The last line printed is one JSON object with the final figures,
// among them the energy used in training (joules per epoch, samples per joule) where the devices
// have an energy counter.
#include <kirzl/ddp.hpp>
#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/metrics.hpp>
#include <kirzl/io/progress.hpp>
#include <kirzl/kirzl.hpp>

#include "data_parallel.hpp"
#include "fashion_mnist_args.hpp"
#include "path_checks.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace kirzl;
namespace nn = kirzl::nn;

using Args = kirzl::examples::FashionMnistArgs;

// Without sharding, over the model's parameters as always; with it, DDP builds the optimizer over
// this rank's shard of them.
std::unique_ptr<optim::Optimizer> make_optimizer(const Args& a, DistributedDataParallel& ddp) {
  const optim::SGDOptions sgd{.lr = a.lr, .momentum = 0.9, .nesterov = true};
  const optim::AdamWOptions adamw{.lr = a.lr, .weight_decay = 0.01};
  if (a.shard != "none") {
    if (a.optimizer == "sgd") return ddp.make_optimizer<optim::SGD>(sgd);
    return ddp.make_optimizer<optim::AdamW>(adamw);
  }
  const std::vector<Tensor> params = ddp.module().parameters();
  if (a.optimizer == "sgd") return std::make_unique<optim::SGD>(params, sgd);
  return std::make_unique<optim::AdamW>(params, adamw);
}

// The run's settings that a checkpoint must agree with to be resumed. Not the world size and not
// --shard: a checkpoint resumes at any of them (the global batch keeps the data order).
std::map<std::string, std::string> run_config(const Args& a) {
  return {{"model", a.model},
          {"optimizer", a.optimizer},
          {"batch_size", std::to_string(a.batch_size)},
          {"lr", std::to_string(a.lr)},
          {"seed", std::to_string(a.seed)},
          {"epochs", std::to_string(a.epochs)},
          {"train_limit", std::to_string(a.train_limit)}};
}

struct Evaluation {
  double accuracy = 0, loss = 0;
};

// Each rank scores a contiguous share of the test set; the sums meet in one all_reduce.
Evaluation evaluate(nn::Module& model, const data::TensorDataset& test, const comm::ProcessGroup& world, Device dev) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t n = test.size();
  const int64_t begin = n * world.rank() / world.size(), end = n * (world.rank() + 1) / world.size();
  double correct = 0, loss_sum = 0;
  const int64_t chunk = 1000;
  for (int64_t i = begin; i < end; i += chunk) {
    const int64_t j = std::min(end, i + chunk);
    Tensor x = test.inputs().slice(0, i, j).to(dev), y = test.targets().slice(0, i, j).to(dev);
    Tensor logits = model(x);
    loss_sum += cross_entropy(logits, y).item() * static_cast<double>(j - i);
    correct += sum(eq(argmax(logits, 1), y)).item();
  }
  Tensor totals = from_vector<double>({correct, loss_sum}, {2});
  world.communicator()->all_reduce(totals, {.op = comm::ReduceOp::Sum, .tag = "evaluation"}).wait();
  auto t = totals.to_vector<double>();
  model.train();
  return {t[0] / static_cast<double>(n), t[1] / static_cast<double>(n)};
}

int run(const Args& args) {
  comm::ProcessGroup world = comm::init();
  const bool lead = world.rank() == 0;
  const examples::CheckpointForm form = examples::checkpoint_form(world.size(), args.shard);
  const bool sharded = args.shard != "none";
  // Wrong paths stop every rank now, not after the first epoch. See Note [paths checked by every rank].
  examples::check_paths_on_every_rank(world, [&] { examples::check_fashion_mnist_paths(args, lead, form); });
  if (args.threads > 0) set_num_threads(args.threads);
  // The world's device: cuda:(local_rank % visible GPUs), so that 2 ranks on one GPU share it
  // (cuda:local_rank named a device that does not exist there).
  const Device dev = args.device == "cuda" ? world.device() : Device::cpu();
  KIRZL_CHECK_CODE(args.device != "cuda" || dev.is_cuda(), ErrorCode::Unsupported, "fashion_mnist: --device cuda, but no CUDA "
                   "device is visible here (or kirzl was built without CUDA)");
  KIRZL_CHECK(args.batch_size % world.size() == 0, "fashion_mnist: --batch-size ", args.batch_size,
              " (the global batch) must be divisible by the world size ", world.size());
  const int64_t local_batch = args.batch_size / world.size();

  data::FashionMNIST train(args.data_dir, data::Split::Train, {.limit = args.train_limit});
  data::FashionMNIST test(args.data_dir, data::Split::Test, {.limit = args.test_limit});

  manual_seed(args.seed);  // the same initial model on every rank (DDP also broadcasts rank 0's)
  // MLP: ~0.89 test accuracy after 10 epochs; CNN: ~0.91 after 4 (models/fashion_mnist.hpp).
  std::shared_ptr<nn::Module> model = args.model == "mlp" ? models::fashion_mlp() : models::fashion_cnn();
  model->to(dev);
  DistributedDataParallel ddp(*model, world, {.shard = examples::parse_shard(args.shard)});
  auto opt = make_optimizer(args, ddp);

  data::DistributedSampler sampler(train.size(), world, {.shuffle = true, .seed = args.seed, .drop_last = true});
  data::DataLoader loader(train, {.batch_size = local_batch, .drop_last = true, .sampler = &sampler});
  const int64_t steps_per_epoch = loader.num_batches();
  KIRZL_CHECK(steps_per_epoch > 0, "fashion_mnist: ", train.size(), " training examples make no full batch of ",
              args.batch_size);
  optim::CosineWithWarmup schedule(*opt, {.warmup_steps = std::min<int64_t>(100, steps_per_epoch),
                                          .total_steps = steps_per_epoch * args.epochs});

  int start_epoch = 0;
  int64_t step = 0;
  if (!args.resume.empty()) {
    // The run's settings first: a checkpoint of another model should say so, not list tensor names.
    const auto saved = examples::checkpoint_metadata(args.resume);
    for (const auto& [key, value] : run_config(args)) {
      auto it = saved.find("config." + key);
      KIRZL_CHECK(it == saved.end() || it->second == value, "fashion_mnist: --resume '", args.resume,
                  "' was written with ", key, " = ", it->second, " but this run has ", key, " = ", value);
    }
    // Any world size and --shard: the optimizer state is resharded to this run's.
    io::CheckpointInfo info = examples::load_run_checkpoint(args.resume, form, ddp, opt.get());
    start_epoch = static_cast<int>(info.epoch);
    step = info.step;
    for (int64_t s = 0; s < step; ++s) schedule.step();
    if (lead)
      std::printf("resumed from %s (written by %s) at epoch %d, step %lld\n", args.resume.c_str(),
                  examples::checkpoint_origin(saved).c_str(), start_epoch, static_cast<long long>(step));
  }
  io::MetricsLog metrics(lead ? args.metrics : std::string());
  examples::JobEnergy energy(world, dev, "fashion_mnist");  // NVML on a GPU, RAPL on the CPU

  if (lead)
    std::printf("fashion_mnist: %s, %s lr %g, global batch %lld (%lld per rank), %d epochs, %d rank(s), --shard %s, %s\n",
                args.model.c_str(), args.optimizer.c_str(), args.lr, static_cast<long long>(args.batch_size),
                static_cast<long long>(local_batch), args.epochs, world.size(), args.shard.c_str(), dev.str().c_str());
  if (lead) std::printf("fashion_mnist: energy: %s\n", energy.status().c_str());
  // Energy of the training loops (evaluations left out): this rank's and the job's, each counter once.
  io::EnergyWindow epoch_window(energy.meter());
  double train_joules = energy.meter().available() ? 0.0 : NAN, job_train_joules = energy.available() ? 0.0 : NAN;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  double train_seconds = 0;
  int64_t samples = 0;
  Evaluation result;
  const int end_epoch = args.stop_after > 0 ? std::min(args.epochs, args.stop_after) : args.epochs;
  for (int epoch = start_epoch; epoch < end_epoch; ++epoch) {
    sampler.set_epoch(epoch);
    io::ProgressBar bar({.total_steps = steps_per_epoch, .epoch = epoch + 1, .epochs = args.epochs, .label = "train",
                         .enabled = lead});
    const auto epoch_start = std::chrono::steady_clock::now();
    epoch_window.start();
    int64_t k = 0;
    for (auto& [x, y] : loader) {
      Tensor loss = cross_entropy(ddp(x.to(dev)), y.to(dev));
      opt->zero_grad();
      loss.backward();  // buckets are all-reduced (reduce-scattered with --shard gradients) while backward runs
      {
        auto span = ddp.trace("optimizer step");  // in the KIRZL_TIMELINE trace, when enabled
        opt->step();  // sharded: updates this rank's shard and starts the parameters' all-gather
      }
      schedule.step();
      ++step;
      ++k;
      samples += args.batch_size;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      const double rate = static_cast<double>(k * args.batch_size) / std::max(secs, 1e-9);
      bar.update(k, loss.item(), rate);  // this rank's loss, shown on rank 0
      if (step % args.log_every == 0) {
        // The metrics log holds the loss of the global batch: the mean over ranks.
        Tensor global_loss = loss.detach().to(Device::cpu()).to(DType::f64).reshape({1});
        world.communicator()->all_reduce(global_loss, {.op = comm::ReduceOp::Avg, .tag = "loss for the metrics log"}).wait();
        const DDPStepStats& comm_stats = ddp.last_step_stats();
        metrics.log(io::MetricsRecord{.step = step, .epoch = epoch, .loss = global_loss.item(), .lr = opt->lr(),
                                      .samples_per_second = rate, .elapsed_seconds = elapsed()}
                        .set("comm_hidden_ms", comm_stats.comm_hidden_ms)
                        .set("comm_exposed_ms", comm_stats.comm_exposed_ms));
      }
    }
    bar.finish();
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    const double rank_epoch_joules = epoch_window.finish(0, 0).joules;
    train_joules += rank_epoch_joules;
    const double epoch_joules = energy.job_joules(rank_epoch_joules);  // null, never 0, without a counter
    job_train_joules += epoch_joules;
    if (sharded) ddp.synchronize_parameters();  // evaluate() reads the parameters outside ddp.forward
    result = evaluate(*model, test, world, dev);
    if (lead) {
      std::printf("epoch %d/%d  test accuracy %.4f  test loss %.4f  (%.1f s)\n", epoch + 1, args.epochs, result.accuracy,
                  result.loss, elapsed());
      io::MetricsRecord record{.step = step, .epoch = epoch, .loss = result.loss, .accuracy = result.accuracy,
                               .lr = opt->lr(), .elapsed_seconds = elapsed(), .extra = {{"split", "test"}}};
      record.set("joules_per_epoch", epoch_joules)
          .set("samples_per_joule", epoch_joules > 0 ? static_cast<double>(k * args.batch_size) / epoch_joules : NAN);
      if (!energy.available()) record.set("energy", energy.status());
      metrics.log(record);
    }
    if (!args.checkpoint.empty())  // a file from rank 0, or a directory every rank writes its share of
      examples::save_run_checkpoint(args.checkpoint, form, ddp, opt.get(),
                                    {.step = step, .epoch = epoch + 1, .config = run_config(args)}, world);
  }
  if (start_epoch >= end_epoch) result = evaluate(*model, test, world, dev);
  const auto memory = examples::MemoryFigures::gather(world, *opt);
  std::vector<double> rank_joules;
  energy.job_joules(train_joules, &rank_joules);
  const int trained_epochs = std::max(0, end_epoch - start_epoch);
  const std::string layout = examples::world_layout_json(world);
  if (lead)
    std::printf("{\"example\": \"fashion_mnist\", \"model\": \"%s\", \"test_accuracy\": %.4f, \"test_loss\": %.4f, "
                "\"epochs\": %d, \"seconds\": %.2f, \"samples_per_second\": %.0f, \"world_size\": %d, \"shard\": \"%s\", "
                "%s, %s, \"energy\": %s, \"energy_joules\": %s, \"joules_per_epoch\": %s, \"samples_per_joule\": %s, "
                "\"energy_joules_per_rank\": %s}\n",
                args.model.c_str(), result.accuracy, result.loss, args.epochs, elapsed(),
                train_seconds > 0 ? static_cast<double>(samples) / train_seconds : 0.0, world.size(), args.shard.c_str(),
                memory.json().c_str(), layout.c_str(), examples::json_string(energy.status()).c_str(),
                examples::json_number_or_null(job_train_joules).c_str(),
                examples::json_number_or_null(job_train_joules / trained_epochs).c_str(),
                examples::json_number_or_null(job_train_joules > 0 ? static_cast<double>(samples) / job_train_joules : NAN)
                    .c_str(),
                examples::json_list(rank_joules).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kirzl::examples::run_example_main<Args>("fashion_mnist", argc, argv, kirzl::examples::parse_fashion_mnist_args,
                                                 [](const Args& args) {
                                                   try {
                                                     return run(args);
                                                   } catch (const kirzl::Error& e) {
                                                     std::fprintf(stderr, "%s\n", e.what());
                                                     return 1;
                                                   }
                                                 });
}
