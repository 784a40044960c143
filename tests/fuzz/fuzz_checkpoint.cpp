// Fuzz harness: io::load_checkpoint into a small model (Linear 3 -> 2) and an Adam optimizer that
// has taken one step, from arbitrary bytes.
// Properties: failures are Error{Io}, Error{InvalidArgument} or Error{Unsupported}, and on any
// failure neither the model's parameters nor the optimizer's state changed (the API's promise).
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "kirzl/io/checkpoint.hpp"
#include "kirzl/nn/layers.hpp"
#include "kirzl/ops.hpp"
#include "kirzl/optim/adam.hpp"

namespace {

using namespace kirzl;

// Every entry of `sd` as name and bytes, to compare before and after a failed load.
std::vector<std::pair<std::string, std::string>> snapshot(const StateDict& sd) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, t] : sd) {
    Tensor c = t.detach().contiguous();
    out.emplace_back(name + " " + dtype_name(c.dtype()) + " " + c.shape().str(),
                     std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
  }
  return out;
}

struct Training {
  std::shared_ptr<nn::Linear> model = std::make_shared<nn::Linear>(3, 2);
  std::unique_ptr<optim::Adam> opt;

  Training() {
    opt = std::make_unique<optim::Adam>(model->parameters());
    Tensor loss = sum((*model)(ones({4, 3})));
    loss.backward();
    opt->step();
  }
};

// The model and optimizer are rebuilt after a successful load (which changes them).
std::unique_ptr<Training>& training() {
  static std::unique_ptr<Training> t = std::make_unique<Training>();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::input_file().write(data, size);
  Training& t = *training();
  const auto model_before = snapshot(t.model->state_dict());
  const auto opt_before = snapshot(t.opt->state_dict());
  try {
    (void)io::load_checkpoint(path, *t.model, t.opt.get());
    training() = std::make_unique<Training>();
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io, ErrorCode::InvalidArgument, ErrorCode::Unsupported});
    KIRZL_FUZZ_REQUIRE(snapshot(t.model->state_dict()) == model_before, "a failed load leaves the model as it was");
    KIRZL_FUZZ_REQUIRE(snapshot(t.opt->state_dict()) == opt_before, "a failed load leaves the optimizer as it was");
  }
  return 0;
}
