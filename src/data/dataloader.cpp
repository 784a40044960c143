// DataLoader: one producer thread per epoch fills a bounded queue of ready batches.
#include "kirzl/data/dataloader.hpp"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

namespace kirzl::data {

// The batches of one epoch. With prefetch > 0 a thread assembles them in order into `ready`,
// never more than `prefetch` ahead of the consumer.
struct DataLoader::Epoch {
  const Dataset& dataset;
  std::vector<int64_t> indices;
  int64_t batch_size;
  int64_t num_batches;
  int prefetch;

  std::mutex mu;
  std::condition_variable changed;
  std::deque<Example> ready;
  std::exception_ptr error;
  bool stop = false;
  int64_t produced = 0;  // batches pushed (or failed) by the producer
  int64_t consumed = 0;
  std::thread producer;

  Epoch(const Dataset& d, std::vector<int64_t> idx, int64_t bs, int64_t nb, int pf)
      : dataset(d), indices(std::move(idx)), batch_size(bs), num_batches(nb), prefetch(pf) {
    if (prefetch > 0) producer = std::thread([this] { produce(); });
  }
  ~Epoch() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    changed.notify_all();
    if (producer.joinable()) producer.join();
  }

  Example make(int64_t b) const {
    const int64_t begin = b * batch_size;
    const int64_t end = std::min<int64_t>(begin + batch_size, static_cast<int64_t>(indices.size()));
    return dataset.get_batch(std::span<const int64_t>(indices.data() + begin, static_cast<size_t>(end - begin)));
  }

  void produce() {
    for (int64_t b = 0; b < num_batches; ++b) {
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return stop || static_cast<int>(ready.size()) < prefetch; });
        if (stop) return;
      }
      Example e;
      std::exception_ptr err;
      try {
        e = make(b);
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (err) {
          error = err;
          produced = num_batches;  // nothing after a failure
        } else {
          ready.push_back(std::move(e));
          ++produced;
        }
      }
      changed.notify_all();
      if (err) return;
    }
  }

  // The next batch, false at the end of the epoch; re-throws a loading failure.
  bool next(Example& out) {
    if (consumed >= num_batches) return false;
    if (prefetch == 0) {
      out = make(consumed++);
      return true;
    }
    std::unique_lock<std::mutex> lock(mu);
    changed.wait(lock, [&] { return !ready.empty() || error; });
    if (ready.empty()) {
      consumed = num_batches;
      std::rethrow_exception(error);
    }
    out = std::move(ready.front());
    ready.pop_front();
    ++consumed;
    lock.unlock();
    changed.notify_all();
    return true;
  }
};

DataLoader::DataLoader(const Dataset& dataset, const DataLoaderOptions& options) : dataset_(dataset), options_(options) {
  KIRZL_CHECK(options.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", options.batch_size);
  KIRZL_CHECK(options.prefetch >= 0, "DataLoader: prefetch must be >= 0, got ", options.prefetch);
  if (options.sampler) {
    for (int64_t i : options.sampler->indices())
      KIRZL_CHECK(i >= 0 && i < dataset.size(), "DataLoader: the sampler yields index ", i, " but the dataset has ",
                  dataset.size(), " examples");
  }
}

DataLoader::~DataLoader() = default;

int64_t DataLoader::num_examples() const {
  const int64_t n = options_.sampler ? options_.sampler->size() : dataset_.size();
  return options_.drop_last ? n / options_.batch_size * options_.batch_size : n;
}

int64_t DataLoader::num_batches() const {
  const int64_t n = options_.sampler ? options_.sampler->size() : dataset_.size();
  return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::set_epoch(int64_t epoch) { epoch_ = epoch; }

std::vector<int64_t> DataLoader::epoch_indices() {
  if (options_.sampler) return options_.sampler->indices();
  const int64_t n = dataset_.size();
  if (options_.shuffle) {
    Generator g(options_.seed + static_cast<uint64_t>(epoch_));
    return randperm(n, &g).to_vector<int64_t>();
  }
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

DataLoader::Iterator DataLoader::begin() {
  running_.reset();  // stops an unfinished epoch first
  std::vector<int64_t> idx = epoch_indices();
  ++epoch_;
  running_ = std::make_unique<Epoch>(dataset_, std::move(idx), options_.batch_size, num_batches(), options_.prefetch);
  Iterator it(this, false);
  if (!next(it.current_)) it.done_ = true;
  return it;
}

bool DataLoader::next(Example& out) { return running_ && running_->next(out); }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (!loader_->next(current_)) {
    done_ = true;
    current_ = Example{};
  }
  return *this;
}

}  // namespace kirzl::data
