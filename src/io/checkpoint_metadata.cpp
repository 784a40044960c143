#include "io/checkpoint_metadata.h"

#include <charconv>

#include "kirzl/core/error.hpp"
#include "kirzl/core/generator.hpp"

namespace kirzl::io::detail {

namespace {
constexpr const char* kConfigPrefix = "config.";
}  // namespace

std::map<std::string, std::string> checkpoint_metadata(const CheckpointInfo& info, const optim::Optimizer* opt) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : info.config) meta[kConfigPrefix + k] = v;
  meta["format"] = kCheckpointFormat;
  meta["step"] = std::to_string(info.step);
  meta["epoch"] = std::to_string(info.epoch);
  if (opt) meta["optimizer"] = opt->name();
  // The default generator's stream, so that dropout after a resume draws what it would have drawn.
  meta["rng.seed"] = std::to_string(default_generator().seed());
  meta["rng.offset"] = std::to_string(default_generator().offset());
  return meta;
}

CheckpointMetadata parse_checkpoint_metadata(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto fmt = meta.find("format");
  KIRZL_CHECK_CODE(fmt != meta.end(), ErrorCode::Io, "load_checkpoint: '", path,
                   "' is a safetensors file but not a kirzl checkpoint (no 'format' metadata)");
  KIRZL_CHECK_CODE(fmt->second == kCheckpointFormat, ErrorCode::Io, "load_checkpoint: '", path, "' has format '",
                   fmt->second, "', expected '", kCheckpointFormat, "'");
  CheckpointMetadata m;
  auto read_int = [&](const char* key, int64_t& out) {
    auto it = meta.find(key);
    KIRZL_CHECK_CODE(it != meta.end(), ErrorCode::Io, "load_checkpoint: '", path, "' has no '", key, "' metadata");
    const std::string& s = it->second;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    KIRZL_CHECK_CODE(r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty(), ErrorCode::Io,
                     "load_checkpoint: '", path, "': metadata '", key, "' is '", s, "', not an integer");
  };
  read_int("step", m.info.step);
  read_int("epoch", m.info.epoch);
  m.has_rng = meta.count("rng.seed") && meta.count("rng.offset");
  if (m.has_rng) {
    read_int("rng.seed", m.rng_seed);
    read_int("rng.offset", m.rng_offset);
  }
  const size_t n = std::char_traits<char>::length(kConfigPrefix);
  for (const auto& [k, v] : meta)
    if (k.rfind(kConfigPrefix, 0) == 0) m.info.config[k.substr(n)] = v;
  if (auto it = meta.find("optimizer"); it != meta.end()) m.optimizer = it->second;
  return m;
}

void restore_generator(const CheckpointMetadata& m) {
  if (!m.has_rng) return;
  default_generator().manual_seed(static_cast<uint64_t>(m.rng_seed));
  default_generator().set_offset(static_cast<uint64_t>(m.rng_offset));
}

}  // namespace kirzl::io::detail
