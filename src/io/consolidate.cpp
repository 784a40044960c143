// consolidate(): a sharded checkpoint as one ordinary safetensors file, streamed.
#include <algorithm>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/safetensors_layout.h"
#include "kirzl/io/sharded_checkpoint.hpp"

namespace kirzl::io {

void consolidate(const std::string& dir, const std::string& out_file, bool include_optimizer) {
  static const std::string who = "consolidate";
  // How much of one tensor is in memory at a time.
  constexpr uint64_t kStepBytes = uint64_t{16} << 20;
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  std::vector<detail::SafetensorsPlanEntry> entries;
  for (const std::string& key : ck.keys()) {
    if (!include_optimizer && key.rfind("optim.", 0) == 0) continue;
    const DType dtype = ck.dtype(key);
    entries.push_back({key, dtype, ck.shape(key), static_cast<uint64_t>(ck.numel(key)) * dtype_size(dtype)});
  }
  // The layout save_safetensors() would write (Note [data order]), filled a range at a time.
  const detail::SafetensorsPlan plan = detail::plan_safetensors(entries, ck.metadata(), who, out_file);
  detail::AtomicFile file(out_file, who);
  file.write(plan.prefix.data(), plan.prefix.size());
  for (size_t i : plan.order) {
    const auto& e = entries[i];
    const int64_t numel = ck.numel(e.name);
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(kStepBytes / dtype_size(e.dtype)));
    for (int64_t at = 0; at < numel; at += step) {
      const Tensor part = ck.read(e.name, at, std::min(step, numel - at));
      file.write(part.data_ptr(), part.nbytes());
    }
  }
  file.commit();
}

}  // namespace kirzl::io
