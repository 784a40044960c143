#include "kirzl/io/checkpoint.hpp"

#include "io/checkpoint_metadata.h"
#include "kirzl/autograd.hpp"
#include "kirzl/io/safetensors.hpp"

namespace kirzl::io {

namespace {
using detail::kModelPrefix;
using detail::kOptimPrefix;

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
  const std::map<std::string, std::string> meta = detail::checkpoint_metadata(info, opt);
  save_safetensors(path, all, meta);
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* opt, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  const detail::CheckpointMetadata meta = detail::parse_checkpoint_metadata(path, file.metadata);

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
    KIRZL_CHECK(meta.optimizer.empty() || meta.optimizer == opt->name(), "load_checkpoint: '", path,
                "' holds the state of a ", meta.optimizer, " optimizer, but the optimizer given is ", opt->name());
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
  detail::restore_generator(meta);
  return meta.info;
}

}  // namespace kirzl::io
