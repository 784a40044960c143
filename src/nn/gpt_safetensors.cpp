// GPT-2 weights under GPT-2's tensor names: models::gpt2_state_dict, load_gpt2_state_dict and the
// safetensors files.
//
// Note [GPT-2 Conv1D layout]: OpenAI's GPT-2 code, and Hugging Face transformers after it, build
// the four projections of a block (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) from a
// "Conv1D" module that computes x @ W + b with W stored [in, out] — the transpose of a Linear's
// [out, in] (e.g. h.0.attn.c_attn.weight is [768, 2304] in the 124M model). Files in that layout
// are what other frameworks export, so kirzl transposes those four on save and load; every other
// tensor (embeddings, LayerNorms, biases) has the same layout in both.
//
// The token embedding is padded in the model (Note [GPT vocabulary padding] in gpt.cpp), not in
// GPT-2 files: "wte.weight" is written as its first vocab_size rows and read into them, the
// padding rows set to zero.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kirzl/autograd.hpp"
#include "kirzl/io/safetensors.hpp"
#include "kirzl/models/gpt.hpp"

namespace kirzl::models {

namespace {

bool is_conv1d_weight(const std::string& name) {
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return name.rfind("h.", 0) == 0 && (ends_with(".attn.c_attn.weight") || ends_with(".attn.c_proj.weight") ||
                                      ends_with(".mlp.c_fc.weight") || ends_with(".mlp.c_proj.weight"));
}

// Buffers and tied copies that GPT-2 files may carry and kirzl has no parameter for.
bool is_ignored(const std::string& name) {
  if (name == "lm_head.weight") return true;
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return name.rfind("h.", 0) == 0 && (ends_with(".attn.bias") || ends_with(".attn.masked_bias"));
}

std::string strip_prefix(const std::string& name) {
  static const std::string prefix = "transformer.";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

}  // namespace

StateDict gpt2_state_dict(const GPT& model) {
  StateDict out;
  for (const auto& [name, t] : model.named_parameters()) {
    if (name == "wte.weight") out.insert(name, t.detach().narrow(0, 0, model.config().vocab_size));
    else out.insert(name, is_conv1d_weight(name) ? t.detach().t().contiguous() : t);
  }
  return out;
}

void load_gpt2_state_dict(GPT& model, const StateDict& dict, const std::string& source) {
  StateDict own;  // kirzl names and layout, ready for Module::load_state_dict
  std::set<std::string> seen;
  std::vector<std::string> unexpected, misshaped, bad_dtype;
  const auto params = model.named_parameters();
  for (const auto& [file_name, t] : dict) {
    const std::string name = strip_prefix(file_name);
    if (is_ignored(name)) continue;
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
    if (it == params.end()) {
      unexpected.push_back(file_name);
      continue;
    }
    KIRZL_CHECK(seen.insert(name).second, "load_gpt2_state_dict: ", source, " holds '", name,
                "' twice (with and without the 'transformer.' prefix)");
    const bool conv = is_conv1d_weight(name), wte = name == "wte.weight";
    const Shape& p = it->second.shape();
    const Shape expected = conv ? Shape{p[1], p[0]} : wte ? Shape{model.config().vocab_size, p[1]} : p;
    if (!is_floating(t.dtype())) {
      bad_dtype.push_back(file_name + " (" + dtype_name(t.dtype()) + ")");
    } else if (t.shape() != expected) {
      misshaped.push_back(file_name + " (expected " + expected.str() + (conv ? " [in, out]" : "") + ", got " +
                          t.shape().str() + ")");
    } else if (wte && p[0] != expected[0]) {
      // The padded parameter: the file's rows, then zeros (in the file's dtype and device; the
      // model's load_state_dict converts).
      Tensor padded = zeros(p, {.dtype = t.dtype(), .device = t.device()});
      padded.narrow(0, 0, expected[0]).copy_(t);
      own.insert(name, padded);
    } else {
      own.insert(name, conv ? t.t() : t);
    }
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : params)
    if (!seen.count(name)) missing.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty() || !bad_dtype.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 8; ++i) {
        if (i) s += ", ";
        s += v[i];
      }
      if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    std::string msg = "load_gpt2_state_dict: " + source + " does not fit " + model.config().str() + ":";
    if (!missing.empty()) msg += " missing: " + list(missing) + ";";
    if (!misshaped.empty()) msg += " wrong shape: " + list(misshaped) + ";";
    if (!bad_dtype.empty()) msg += " not floating: " + list(bad_dtype) + ";";
    if (!unexpected.empty()) msg += " unexpected: " + list(unexpected) + ";";
    KIRZL_FAIL(ErrorCode::InvalidArgument, msg);
  }
  model.load_state_dict(own, /*strict=*/true);
}

void save_gpt2_safetensors(const std::string& path, const GPT& model, const std::map<std::string, std::string>& metadata,
                           DType dtype) {
  KIRZL_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16 || dtype == DType::f64,
              "save_gpt2_safetensors: dtype must be f32, bf16, f16 or f64, got ", dtype_name(dtype));
  StateDict out;
  for (const auto& [name, t] : gpt2_state_dict(model)) out.insert(name, t.detach().to(Device::cpu()).to(dtype));
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";  // what transformers' loader expects of a PyTorch-layout file
  for (const auto& [k, v] : model.config().to_map()) meta["gpt." + k] = v;
  io::save_safetensors(path, out, meta);
}

void load_gpt2_safetensors(const std::string& path, GPT& model) {
  io::SafetensorsFile file = io::load_safetensors(path);
  load_gpt2_state_dict(model, file.tensors, "'" + path + "'");
}

GPTConfig gpt2_config_from_safetensors(const std::string& path, int64_t n_head) {
  io::SafetensorsFile file = io::load_safetensors(path);
  bool has_meta = false;
  for (const auto& [k, v] : file.metadata) has_meta = has_meta || k.rfind("gpt.", 0) == 0;
  if (has_meta) {
    GPTConfig c = GPTConfig::from_map(file.metadata, "gpt.");
    if (n_head > 0) c.n_head = n_head;
    c.validate();
    return c;
  }
  GPTConfig c;
  auto tensor = [&](const std::string& name) -> const Tensor* {
    const Tensor* t = file.tensors.find(name);
    return t ? t : file.tensors.find("transformer." + name);
  };
  const Tensor* wte = tensor("wte.weight");
  const Tensor* wpe = tensor("wpe.weight");
  KIRZL_CHECK_CODE(wte && wpe && wte->dim() == 2 && wpe->dim() == 2 && wte->size(1) == wpe->size(1),
                   ErrorCode::InvalidArgument, "gpt2_config_from_safetensors: '", path,
                   "' has no 2-D wte.weight and wpe.weight of one width: not a GPT-2 file");
  c.vocab_size = wte->size(0);
  c.block_size = wpe->size(0);
  c.n_embd = wte->size(1);
  int64_t layers = 0;
  while (tensor("h." + std::to_string(layers) + ".ln_1.weight")) ++layers;
  c.n_layer = layers;
  c.bias = tensor("h.0.attn.c_attn.bias") != nullptr;
  c.n_head = n_head > 0 ? n_head : std::max<int64_t>(1, c.n_embd / 64);
  c.validate();
  return c;
}

}  // namespace kirzl::models
