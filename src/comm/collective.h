// Internal: what a collective is (its signature). The argument checks: collective_checks.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

enum class OpKind : uint8_t { AllReduce, Broadcast, AllGather, ReduceScatter, Barrier, Split };

const char* op_kind_name(OpKind k);

// The signature every rank must agree on, plus what errors show. `count` is the element count of
// the per-rank contribution (all_reduce / broadcast: the tensor; all_gather: `in`; reduce_scatter:
// `out`).
struct CollectiveDesc {
  OpKind kind = OpKind::Barrier;
  int64_t seq = 0;  // 1, 2, ... per communicator
  DType dtype = DType::u8;
  int64_t count = 0;
  ReduceOp op = ReduceOp::Sum;  // all_reduce / reduce_scatter only
  int root = -1;                // broadcast only
  std::string tag;
  std::chrono::milliseconds timeout{0};

  // "all_reduce #12 (f32 x 1000, sum)"
  std::string str() const;
  // str() plus bytes and tag: "all_reduce #12 (f32 x 1000, sum, 4000 B, tag 'bucket 0')"
  std::string long_str() const;
  int64_t bytes() const { return count * static_cast<int64_t>(dtype_size(dtype)); }
  // Hash of (kind, dtype, count, op, root): equal on all ranks for matching collectives.
  int64_t signature() const;
  // The fields that enter signature(), packed so another rank can print them.
  void pack(int64_t out[5]) const;
  static CollectiveDesc unpack(const int64_t in[5], int64_t seq);
};

// "<a> on rank i does not match <b> on rank j"
std::string mismatch_message(const CollectiveDesc& a, int rank_a, const CollectiveDesc& b, int rank_b);

std::string format_bytes(int64_t bytes);

}  // namespace kirzl::comm::detail
