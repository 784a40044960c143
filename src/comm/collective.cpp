// Signatures of collectives.
#include "comm/collective.h"

#include <sstream>

namespace kirzl::comm {

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Min: return "min";
    case ReduceOp::Max: return "max";
    case ReduceOp::Prod: return "prod";
  }
  return "?";
}

namespace detail {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::AllReduce: return "all_reduce";
    case OpKind::Broadcast: return "broadcast";
    case OpKind::AllGather: return "all_gather";
    case OpKind::ReduceScatter: return "reduce_scatter";
    case OpKind::Barrier: return "barrier";
    case OpKind::Split: return "split";
  }
  return "?";
}

std::string format_bytes(int64_t bytes) {
  std::ostringstream os;
  if (bytes < 10 * 1024) os << bytes << " B";
  else if (bytes < 10 * 1024 * 1024) os << bytes / 1024 << " KiB";
  else os << bytes / (1024 * 1024) << " MiB";
  return os.str();
}

std::string CollectiveDesc::str() const {
  std::ostringstream os;
  os << op_kind_name(kind) << " #" << seq;
  if (kind == OpKind::Barrier) return os.str();
  if (kind == OpKind::Split) return os.str();
  os << " (" << dtype_name(dtype) << " x " << count;
  if (kind == OpKind::AllReduce || kind == OpKind::ReduceScatter) os << ", " << to_string(op);
  if (kind == OpKind::Broadcast) os << ", root " << root;
  os << ")";
  return os.str();
}

std::string CollectiveDesc::long_str() const {
  std::ostringstream os;
  os << str();
  if (kind != OpKind::Barrier && kind != OpKind::Split) os << " of " << format_bytes(bytes());
  if (!tag.empty()) os << ", tag '" << tag << "'";
  return os.str();
}

void CollectiveDesc::pack(int64_t out[5]) const {
  out[0] = static_cast<int64_t>(kind);
  out[1] = static_cast<int64_t>(dtype);
  out[2] = count;
  out[3] = (kind == OpKind::AllReduce || kind == OpKind::ReduceScatter) ? static_cast<int64_t>(op) : -1;
  out[4] = kind == OpKind::Broadcast ? root : -1;
}

CollectiveDesc CollectiveDesc::unpack(const int64_t in[5], int64_t seq) {
  CollectiveDesc d;
  d.kind = static_cast<OpKind>(in[0]);
  d.dtype = static_cast<DType>(in[1]);
  d.count = in[2];
  d.op = in[3] >= 0 ? static_cast<ReduceOp>(in[3]) : ReduceOp::Sum;
  d.root = static_cast<int>(in[4]);
  d.seq = seq;
  return d;
}

int64_t CollectiveDesc::signature() const {
  int64_t f[5];
  pack(f);
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the packed fields
  for (int64_t v : f) {
    for (int b = 0; b < 8; ++b) {
      h ^= static_cast<uint64_t>(v >> (8 * b)) & 0xffu;
      h *= 1099511628211ull;
    }
  }
  // Keep it positive and below 2^62 so it can travel next to negated copies (see mpi header).
  return static_cast<int64_t>(h >> 2);
}

std::string mismatch_message(const CollectiveDesc& a, int rank_a, const CollectiveDesc& b, int rank_b) {
  std::ostringstream os;
  os << "collective mismatch: " << a.str() << " on rank " << rank_a << " does not match " << b.str() << " on rank "
     << rank_b << " (every rank must issue the same collectives, with the same dtype, element count, op and root, "
     << "in the same order)";
  if (!a.tag.empty()) os << "; tag on rank " << rank_a << ": '" << a.tag << "'";
  return os.str();
}

}  // namespace detail
}  // namespace kirzl::comm
