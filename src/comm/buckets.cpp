#include "comm/buckets.h"

namespace kirzl::ddp_detail {

std::vector<std::vector<size_t>> assign_buckets(const std::vector<ParamSlot>& params, size_t cap_bytes,
                                                size_t first_cap_bytes) {
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> current;
  size_t current_bytes = 0;
  auto cap = [&] { return buckets.empty() ? first_cap_bytes : cap_bytes; };
  for (size_t k = params.size(); k-- > 0;) {
    const ParamSlot& p = params[k];
    bool other_kind = !current.empty() && (params[current.front()].dtype != p.dtype ||
                                           !(params[current.front()].device == p.device));
    if (!current.empty() && (other_kind || current_bytes + p.bytes > cap())) {
      buckets.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(k);
    current_bytes += p.bytes;
  }
  if (!current.empty()) buckets.push_back(std::move(current));
  return buckets;
}

}  // namespace kirzl::ddp_detail
