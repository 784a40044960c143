#include "fashion_mnist_args.hpp"

namespace kirzl::examples {

namespace {
std::string positive(double v) { return v > 0 ? "" : "a number > 0"; }
}  // namespace

FashionMnistArgs parse_fashion_mnist_args(int argc, const char* const* argv) {
  FashionMnistArgs a;
  FlagParser p("fashion_mnist", "Fashion-MNIST with an MLP or a small CNN, data-parallel on any number of ranks.");
  p.add_choice("--model", a.model, "the model", {"mlp", "cnn"});
  p.add_int("--epochs", a.epochs, "epochs of the whole run", 1, 1'000'000, "10 for mlp, 4 for cnn");
  p.add_int("--batch-size", a.batch_size, "the global batch (split over the ranks)", 1);
  p.add_double("--lr", a.lr, "peak learning rate", positive);
  p.add_choice("--optimizer", a.optimizer, "the optimizer", {"adamw", "sgd"});
  p.add_text("--data-dir", a.data_dir, "the Fashion-MNIST files (apt-get install dataset-fashion-mnist)");
  p.add_uint("--seed", a.seed, "seed of the initial model and the data order");
  p.add_choice("--device", a.device, "where to train", {"cpu", "cuda"});
  p.add_choice("--shard", a.shard,
               "what each rank keeps only its share of: the optimizer state (ZeRO-1), also the gradients (ZeRO-2)",
               shard_choices());
  p.add_text("--checkpoint", a.checkpoint,
             "write a checkpoint here after every epoch: a file (one process), a directory (several ranks or --shard)",
             "none");
  p.add_text("--resume", a.resume, "continue from this checkpoint (a file or a directory, of any world size and --shard)",
             "none");
  p.add_text("--metrics", a.metrics, "append JSON lines of metrics here", "none");
  p.add_int("--threads", a.threads, "CPU threads per rank", 1, 1'000'000, "kirzl's default");
  p.add_int("--train-limit", a.train_limit, "use only the first N training examples", 0,
            std::numeric_limits<int64_t>::max(), "0 (all)");
  p.add_int("--test-limit", a.test_limit, "use only the first N test examples", 0, std::numeric_limits<int64_t>::max(),
            "0 (all)");
  p.add_int("--log-every", a.log_every, "a metrics line every N steps", 1);
  p.add_int("--stop-after", a.stop_after, "end after N epochs, as if interrupted", 0, std::numeric_limits<int>::max(),
            "0 (never)");
  p.parse(argc, argv);
  if (!p.given("--epochs")) a.epochs = a.model == "mlp" ? 10 : 4;
  return a;
}

void check_fashion_mnist_paths(const FashionMnistArgs& a, bool writes_files, CheckpointForm form) {
  check_input_dir("--data-dir", a.data_dir, "the default is Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist");
  check_input_checkpoint("--resume", a.resume);
  if (form == CheckpointForm::directory) check_output_checkpoint_dir("--checkpoint", a.checkpoint);
  if (!writes_files) return;
  if (form == CheckpointForm::file) check_output_file("--checkpoint", a.checkpoint);
  check_output_file("--metrics", a.metrics);
}

}  // namespace kirzl::examples
