// The cases both collective algorithms over the abstract transport are tested with (test_ring.cpp,
// test_hierarchical.cpp): every dtype and reduce op, per-rank values whose reduction is exact in
// every dtype, the plain reduction to compare with, one thread per rank over in-process
// transports, and a transport that loses or fails a send on purpose.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "comm/in_process_transport.h"
#include "comm/reduce_ops.h"
#include "kirzl/core/error.hpp"

namespace kirzl::testing::transport_cases {

using comm::ReduceOp;
using namespace kirzl::comm::detail;

inline const DType kDTypes[] = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8, DType::u16, DType::bf16, DType::f16};
inline const ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max, ReduceOp::Prod};

// Rank r's value at element i: small integers, exact in every dtype, whose reduction over 8 ranks
// stays exact too (products: powers of two up to 2^8, which u8 wraps to 0 — as the reduction does).
inline double value(ReduceOp op, int r, int64_t i) {
  if (op == ReduceOp::Prod) return 1 + (r + i) % 2;
  return static_cast<double>((r * 7 + i * 3) % 11);
}

// `values` stored as `dtype`.
inline std::vector<std::byte> encode(const std::vector<double>& values, DType dtype) {
  const size_t n = values.size();
  std::vector<std::byte> out(n * dtype_size(dtype));
  if (n == 0) return out;  // memcpy from an empty vector's null data() is undefined (UBSan)
  std::vector<float> f(values.begin(), values.end());
  auto put = [&]<typename T>(T*) {
    for (size_t i = 0; i < n; ++i) {
      const T v = static_cast<T>(static_cast<uint64_t>(static_cast<int64_t>(values[i])));
      std::memcpy(out.data() + i * sizeof(T), &v, sizeof v);
    }
  };
  switch (dtype) {
    case DType::f32: std::memcpy(out.data(), f.data(), n * sizeof(float)); break;
    case DType::f64: std::memcpy(out.data(), values.data(), n * sizeof(double)); break;
    case DType::i32: put(static_cast<int32_t*>(nullptr)); break;
    case DType::i64: put(static_cast<int64_t*>(nullptr)); break;
    case DType::u8: put(static_cast<uint8_t*>(nullptr)); break;
    case DType::u16: put(static_cast<uint16_t*>(nullptr)); break;
    case DType::bf16:
    case DType::f16: narrow_from_f32(f.data(), dtype, out.data(), static_cast<int64_t>(n)); break;
  }
  return out;
}

// The plain reduction over ranks 0..n-1 in order, computed in double and stored as `dtype` (an
// integer result wraps like the integer types do). Avg reduces as Sum: the ring leaves the division
// to its caller.
inline std::vector<std::byte> reference(int n, int64_t count, DType dtype, ReduceOp op) {
  std::vector<double> acc(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    double a = value(op, 0, i);
    for (int r = 1; r < n; ++r) {
      const double v = value(op, r, i);
      switch (op) {
        case ReduceOp::Sum:
        case ReduceOp::Avg: a += v; break;
        case ReduceOp::Min: a = std::min(a, v); break;
        case ReduceOp::Max: a = std::max(a, v); break;
        case ReduceOp::Prod: a *= v; break;
      }
    }
    acc[static_cast<size_t>(i)] = a;
  }
  return encode(acc, dtype);
}

inline std::vector<std::byte> contribution(int r, int64_t count, DType dtype, ReduceOp op) {
  std::vector<double> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = value(op, r, i);
  return encode(v, dtype);
}

// Wraps a transport: on rank `bad_rank`, send number `bad_send` (0, 1, ...) throws (`drop` false),
// or it and every later send are silently lost (`drop` true: a dead link — they complete, but the
// peer never gets them).
class FaultyTransport final : public Transport {
 public:
  FaultyTransport(Transport& inner, int bad_rank, int bad_send, bool drop)
      : inner_(inner), bad_(inner.rank() == bad_rank ? bad_send : -1), drop_(drop) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) override {
    if (bad_ >= 0 && sends_++ >= bad_) {
      if (!drop_) throw Error(ErrorCode::Mpi, "injected send failure on rank " + std::to_string(rank()));
      map_.push_back(std::nullopt);
    } else {
      map_.push_back(inner_.send(peer, data, bytes, channel));
    }
    return map_.size() - 1;
  }
  Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) override {
    map_.push_back(inner_.receive(peer, data, bytes, channel));
    return map_.size() - 1;
  }
  void wait(std::span<const Request> requests) override { inner_.wait(inner(requests)); }
  bool test(std::span<const Request> requests) override { return inner_.test(inner(requests)); }
  void keep_alive(std::shared_ptr<void> buffer) override { inner_.keep_alive(std::move(buffer)); }

 private:
  std::vector<Request> inner(std::span<const Request> requests) const {
    std::vector<Request> in;
    for (Request q : requests)
      if (map_.at(q)) in.push_back(*map_[q]);
    return in;
  }

  Transport& inner_;
  const int bad_;
  const bool drop_;
  int sends_ = 0;
  std::vector<std::optional<Request>> map_;
};

// Runs fn(rank, transport) on one thread per rank; each rank's transport is destroyed on its own
// thread when fn returns or throws (so a failing rank leaves the group). Returns each rank's error.
inline std::vector<std::optional<Error>> run_ranks(int n, const std::function<void(int, Transport&)>& fn,
                                            InProcessTransportOptions options = {}) {
  auto transports = make_in_process_transports(n, options);
  std::vector<std::optional<Error>> errors(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r, t = std::move(transports[r])]() mutable {
      try {
        fn(r, *t);
      } catch (const Error& e) {
        errors[r] = e;
      }
      t.reset();
    });
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace kirzl::testing::transport_cases
