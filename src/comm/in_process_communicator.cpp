// The in-process backend. Note [in-process rendezvous]: the ranks of a group share one
// InProcessGroupState. Collective #k is a slot keyed by k: each rank's worker thread deposits its
// signature and buffer pointers, the last to arrive compares the signatures, and then every rank
// does its share of the data movement reading the other ranks' buffers directly. A rank's Work
// completes only after every rank is done reading its buffers. Reductions run over the ranks in
// order 0..n-1 into one shared result, so all ranks get bitwise-identical values. The first timeout
// poisons the whole group, so ranks that wait (or arrive later) fail at once with the same report.
#include "comm/in_process_communicator.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "comm/reduce_ops.h"

namespace kirzl::comm::detail {

struct InProcessGroupState {
  struct Entry {
    bool arrived = false;
    CollectiveDesc desc;
    void* out = nullptr;
    const void* in = nullptr;
  };
  struct Slot {
    std::vector<Entry> entries;
    int arrived = 0;
    bool ready = false;
    std::string mismatch;
    std::vector<std::byte> result;  // all_reduce: the shared result
    int reduced = 0;                // all_reduce: ranks that finished their share of `result`
    int done = 0;                   // ranks that finished reading other ranks' buffers
    int left = 0;
  };
  struct SplitEntry {
    std::shared_ptr<InProcessGroupState> group;
    int taken = 0;
  };

  explicit InProcessGroupState(int n) : size(n), recorders(n, nullptr), departed(n, false) {}

  const int size;
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, Slot> slots;
  std::optional<Error> failure;
  std::vector<const FlightRecorder*> recorders;
  std::vector<bool> departed;  // ranks whose communicator is being destroyed
  std::map<std::pair<int64_t, int>, SplitEntry> splits;

  void leave(int64_t seq, Slot& s) {
    if (++s.left == size) slots.erase(seq);
  }
};

InProcessCommunicator::InProcessCommunicator(std::shared_ptr<InProcessGroupState> group, int rank,
                                             std::chrono::milliseconds timeout)
    : QueuedCommunicator(rank, group->size, timeout), group_(std::move(group)) {
  {
    std::lock_guard<std::mutex> lock(group_->mu);
    group_->recorders[rank] = &recorder_;
  }
  start_worker();
}

InProcessCommunicator::~InProcessCommunicator() {
  // Wake our own collective in progress, and let the other ranks fail at once instead of timing
  // out if they wait for this rank.
  begin_close();
  {
    std::lock_guard<std::mutex> lock(group_->mu);
    group_->departed[rank()] = true;
  }
  group_->cv.notify_all();
  stop_worker();
  std::lock_guard<std::mutex> lock(group_->mu);
  group_->recorders[rank()] = nullptr;
}

void InProcessCommunicator::execute(Op& op) {
  InProcessGroupState& g = *group_;
  const int n = g.size, r = rank();
  const CollectiveDesc& d = op.desc;
  const int64_t seq = d.seq;
  const size_t esize = dtype_size(d.dtype);

  std::unique_lock<std::mutex> lock(g.mu);
  if (g.failure) throw Error(g.failure->code(), g.failure->message());
  InProcessGroupState::Slot& s = g.slots[seq];
  if (s.entries.empty()) s.entries.resize(n);
  s.entries[r] = {true, d, op.out.defined() ? op.out.data_ptr() : nullptr, op.in.defined() ? op.in.data_ptr() : nullptr};
  if (++s.arrived == n) {
    const int64_t sig0 = s.entries[0].desc.signature();
    for (int j = 1; j < n; ++j)
      if (s.entries[j].desc.signature() != sig0) {
        s.mismatch = mismatch_message(s.entries[0].desc, 0, s.entries[j].desc, j);
        break;
      }
    if (s.mismatch.empty() && d.kind == OpKind::AllReduce) s.result.resize(static_cast<size_t>(d.count) * esize);
    s.ready = true;
    g.cv.notify_all();
  }

  const auto deadline = Clock::now() + d.timeout;
  const auto departed_missing = [&] {
    for (int j = 0; j < n; ++j)
      if (!s.entries[j].arrived && g.departed[j]) return j;
    return -1;
  };
  while (!s.ready && !g.failure) {
    if (closing()) {
      // Withdraw, so that no rank arriving later reads this rank's buffers.
      s.entries[r].arrived = false;
      --s.arrived;
      throw Error(ErrorCode::InvalidArgument, d.long_str() + " on rank " + std::to_string(r) +
                                                  " was interrupted: its communicator was destroyed");
    }
    if (const int j = departed_missing(); j >= 0) {
      g.failure.emplace(ErrorCode::InvalidArgument, d.long_str() + " cannot complete: rank " + std::to_string(j) +
                                                        " destroyed its communicator before arriving (rank " +
                                                        std::to_string(j) + " " +
                                                        (g.recorders[j] ? g.recorders[j]->where() : "is gone") + ")");
      g.cv.notify_all();
      break;
    }
    if (g.cv.wait_until(lock, deadline) != std::cv_status::timeout) continue;
    if (s.ready || g.failure || closing() || departed_missing() >= 0) continue;
    // Timed out: name the missing ranks and where every rank is, poison the group, report.
    std::ostringstream msg, missing;
    int nmissing = 0;
    for (int j = 0; j < n; ++j)
      if (!s.entries[j].arrived) missing << (nmissing++ ? ", " : "") << j;
    msg << d.long_str() << " timed out after " << d.timeout.count() << " ms on rank " << r << ": rank"
        << (nmissing > 1 ? "s " : " ") << missing.str() << (nmissing > 1 ? " have" : " has")
        << " not arrived (in-process group of " << n << " ranks).";
    for (int j = 0; j < n; ++j)
      if (!s.entries[j].arrived) msg << " Rank " << j << " " << (g.recorders[j] ? g.recorders[j]->where() : "has destroyed its communicator") << ".";
    g.failure.emplace(ErrorCode::Timeout, msg.str());
    std::ostringstream report;
    report << "kirzl comm: collective timeout (backend inprocess, " << n << " ranks)\n" << msg.str() << "\n";
    for (int j = 0; j < n; ++j)
      if (g.recorders[j]) report << g.recorders[j]->dump(j);
    write_report(report.str());
    g.cv.notify_all();
  }
  if (!s.ready) throw Error(g.failure->code(), g.failure->message());
  if (!s.mismatch.empty()) {
    std::string m = s.mismatch;
    g.leave(seq, s);
    throw Error(ErrorCode::InvalidArgument, m);
  }
  lock.unlock();

  const auto& e = s.entries;
  const int64_t count = d.count;
  const size_t bytes = static_cast<size_t>(count) * esize;
  bool wait_for_readers = true;
  switch (d.kind) {
    case OpKind::Barrier:
    case OpKind::Split: wait_for_readers = false; break;
    case OpKind::Broadcast:
      if (r != d.root && bytes) std::memcpy(e[r].out, e[d.root].out, bytes);
      break;
    case OpKind::AllGather:
      for (int j = 0; j < n && bytes; ++j) std::memcpy(static_cast<std::byte*>(e[r].out) + j * bytes, e[j].in, bytes);
      break;
    case OpKind::ReduceScatter: {
      std::vector<const void*> srcs(n);
      for (int j = 0; j < n; ++j) srcs[j] = static_cast<const std::byte*>(e[j].in) + r * bytes;
      reduce_sources(e[r].out, srcs.data(), n, count, d.dtype, d.op);
      break;
    }
    case OpKind::AllReduce: {
      // Each rank reduces one slice of the shared result, then copies the whole result.
      const int64_t lo = count * r / n, hi = count * (r + 1) / n;
      std::vector<const void*> srcs(n);
      for (int j = 0; j < n; ++j) srcs[j] = static_cast<const std::byte*>(e[j].out) + lo * esize;
      reduce_sources(s.result.data() + lo * esize, srcs.data(), n, hi - lo, d.dtype, d.op);
      lock.lock();
      if (++s.reduced == n) g.cv.notify_all();
      g.cv.wait(lock, [&] { return s.reduced == n; });
      lock.unlock();
      if (bytes) std::memcpy(e[r].out, s.result.data(), bytes);
      wait_for_readers = false;
      break;
    }
  }
  lock.lock();
  if (wait_for_readers) {
    if (++s.done == n) g.cv.notify_all();
    g.cv.wait(lock, [&] { return s.done == n; });
  }
  g.leave(seq, s);
}

std::shared_ptr<Communicator> InProcessCommunicator::split(int color, int key) {
  const int n = size();
  Tensor mine = from_vector<int64_t>({color, key});
  Tensor all = zeros({2 * static_cast<int64_t>(n)}, {.dtype = DType::i64});
  const int64_t split_id = next_seq();
  AllGatherOptions o;
  o.tag = "split(color " + std::to_string(color) + ", key " + std::to_string(key) + ")";
  o.blocking = true;
  all_gather(all, mine, o);
  if (color < 0) return nullptr;
  auto v = all.to_vector<int64_t>();
  std::vector<int> members;
  for (int j = 0; j < n; ++j)
    if (v[2 * j] == color) members.push_back(j);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) { return v[2 * a + 1] < v[2 * b + 1]; });
  const int new_rank = static_cast<int>(std::find(members.begin(), members.end(), rank()) - members.begin());
  const int new_size = static_cast<int>(members.size());
  std::shared_ptr<InProcessGroupState> sub;
  {
    std::lock_guard<std::mutex> lock(group_->mu);
    auto& entry = group_->splits[{split_id, color}];
    if (!entry.group) entry.group = std::make_shared<InProcessGroupState>(new_size);
    sub = entry.group;
    if (++entry.taken == new_size) group_->splits.erase({split_id, color});
  }
  return std::make_shared<InProcessCommunicator>(sub, new_rank, default_timeout());
}

}  // namespace kirzl::comm::detail

namespace kirzl::comm {

std::vector<std::shared_ptr<Communicator>> make_in_process_group(int n, const InProcessOptions& options) {
  KIRZL_CHECK(n >= 1, "make_in_process_group: the group size must be at least 1, got ", n);
  auto state = std::make_shared<detail::InProcessGroupState>(n);
  std::vector<std::shared_ptr<Communicator>> group;
  for (int r = 0; r < n; ++r)
    group.push_back(std::make_shared<detail::InProcessCommunicator>(state, r, options.timeout));
  return group;
}

}  // namespace kirzl::comm
