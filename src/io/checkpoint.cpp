#include "kirzl/io/checkpoint.hpp"

#include <charconv>

#include "kirzl/autograd.hpp"
#include "kirzl/core/generator.hpp"
#include "kirzl/io/safetensors.hpp"

namespace kirzl::io {

namespace {
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimPrefix = "optim.";
constexpr const char* kConfigPrefix = "config.";

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Re-throws `e` with the same code and the checkpoint's path in front.
[[noreturn]] void rethrow_with_path(const Error& e, const std::string& path) {
  KIRZL_FAIL(e.code(), "load_checkpoint: '", path, "': ", e.message());
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* opt,
                     const CheckpointInfo& info) {
  StateDict all;
  for (const auto& [name, t] : model.state_dict()) all.insert(kModelPrefix + name, t);
  if (opt)
    for (const auto& [name, t] : opt->state_dict()) all.insert(kOptimPrefix + name, t);
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : info.config) meta[kConfigPrefix + k] = v;
  meta["format"] = kCheckpointFormat;
  meta["step"] = std::to_string(info.step);
  meta["epoch"] = std::to_string(info.epoch);
  if (opt) meta["optimizer"] = opt->name();
  // The default generator's stream, so that dropout after a resume draws what it would have drawn.
  meta["rng.seed"] = std::to_string(default_generator().seed());
  meta["rng.offset"] = std::to_string(default_generator().offset());
  save_safetensors(path, all, meta);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* opt, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  const auto& meta = file.metadata;
  auto fmt = meta.find("format");
  KIRZL_CHECK_CODE(fmt != meta.end(), ErrorCode::Io, "load_checkpoint: '", path,
                   "' is a safetensors file but not a kirzl checkpoint (no 'format' metadata)");
  KIRZL_CHECK_CODE(fmt->second == kCheckpointFormat, ErrorCode::Io, "load_checkpoint: '", path, "' has format '",
                   fmt->second, "', expected '", kCheckpointFormat, "'");

  CheckpointInfo info;
  auto read_int = [&](const char* key, int64_t& out) {
    auto it = meta.find(key);
    KIRZL_CHECK_CODE(it != meta.end(), ErrorCode::Io, "load_checkpoint: '", path, "' has no '", key, "' metadata");
    const std::string& s = it->second;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    KIRZL_CHECK_CODE(r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty(), ErrorCode::Io,
                     "load_checkpoint: '", path, "': metadata '", key, "' is '", s, "', not an integer");
  };
  read_int("step", info.step);
  read_int("epoch", info.epoch);
  int64_t rng_seed = 0, rng_offset = 0;
  const bool has_rng = meta.count("rng.seed") && meta.count("rng.offset");
  if (has_rng) {
    read_int("rng.seed", rng_seed);
    read_int("rng.offset", rng_offset);
  }
  for (const auto& [k, v] : meta)
    if (starts_with(k, kConfigPrefix)) info.config[k.substr(std::char_traits<char>::length(kConfigPrefix))] = v;

  StateDict model_sd, optim_sd;
  std::string stray;
  for (const auto& [name, t] : file.tensors) {
    if (starts_with(name, kModelPrefix)) model_sd.insert(name.substr(6), t);
    else if (starts_with(name, kOptimPrefix)) optim_sd.insert(name.substr(6), t);
    else {
      if (!stray.empty()) stray += ", ";
      stray += '\'' + name + '\'';
    }
  }
  KIRZL_CHECK(!strict || stray.empty(), "load_checkpoint: '", path,
              "': entries that are neither model.* nor optim.*: ", stray);

  if (opt) {
    KIRZL_CHECK(!optim_sd.empty(), "load_checkpoint: '", path, "' holds no optimizer state, but an optimizer (",
                opt->name(), ") was given to load it into");
    auto kind = meta.find("optimizer");
    KIRZL_CHECK(kind == meta.end() || kind->second == opt->name(), "load_checkpoint: '", path,
                "' holds the state of a ", kind->second, " optimizer, but the optimizer given is ", opt->name());
  }

  // Module::load_state_dict and Optimizer::load_state_dict each validate before changing
  // anything; keep the model's old values so that a rejected optimizer state changes nothing.
  StateDict backup;
  if (opt) {
    NoGradGuard no_grad;
    for (const auto& [name, t] : model.state_dict()) backup.insert(name, t.clone());
  }
  try {
    model.load_state_dict(model_sd, strict);
  } catch (const Error& e) {
    rethrow_with_path(e, path);
  }
  if (opt) {
    try {
      opt->load_state_dict(optim_sd);
    } catch (const Error& e) {
      model.load_state_dict(backup, true);
      rethrow_with_path(e, path);
    }
  }
  if (has_rng) {
    default_generator().manual_seed(static_cast<uint64_t>(rng_seed));
    default_generator().set_offset(static_cast<uint64_t>(rng_offset));
  }
  return info;
}

}  // namespace kirzl::io
