// kirzl.optim: SGD, Adam, AdamW, LAMB (with parameter groups), LR schedules, gradient clipping;
// kirzl.amp: GradScaler.
#include "common.h"

#include <kirzl/amp.hpp>
#include <kirzl/comm.hpp>

namespace kirzl::python {

using namespace kirzl::optim;

std::vector<ParamGroup> groups_from(const py::object& params) {
  std::vector<ParamGroup> groups;
  std::vector<Tensor> plain;
  for (auto item : py::iter(params)) {
    if (py::isinstance<py::dict>(item)) {
      auto d = py::reinterpret_borrow<py::dict>(item);
      ParamGroup g;
      KIRZL_CHECK(d.contains("params"), "optimizer: a parameter group dict needs a 'params' entry");
      g.params = d["params"].cast<std::vector<Tensor>>();
      for (auto kv : d) {
        auto k = kv.first.cast<std::string>();
        if (k == "lr") g.lr = kv.second.cast<double>();
        else if (k == "weight_decay") g.weight_decay = kv.second.cast<double>();
        else KIRZL_CHECK(k == "params", "optimizer: unknown parameter group entry '", k, "' (expected params, lr, weight_decay)");
      }
      groups.push_back(std::move(g));
    } else {
      plain.push_back(item.cast<Tensor>());
    }
  }
  KIRZL_CHECK(groups.empty() || plain.empty(), "optimizer: pass either tensors or parameter-group dicts, not both");
  if (groups.empty()) groups.push_back(ParamGroup{.params = std::move(plain)});
  return groups;
}

py::list groups_to_py(const std::vector<ParamGroup>& groups) {
  py::list out;
  for (const ParamGroup& g : groups) {
    py::dict d;
    d["params"] = g.params;
    if (g.lr) d["lr"] = *g.lr;
    if (g.weight_decay) d["weight_decay"] = *g.weight_decay;
    out.append(d);
  }
  return out;
}

namespace {

std::pair<double, double> betas_of(const py::object& b) {
  auto v = b.cast<std::vector<double>>();
  KIRZL_CHECK(v.size() == 2, "betas must be a pair, got ", v.size(), " values");
  return {v[0], v[1]};
}

/// GradScaler that keeps its communicator alive (the C++ class holds a plain pointer).
struct PyGradScaler : amp::GradScaler {
  PyGradScaler(amp::GradScalerOptions o, std::shared_ptr<comm::Communicator> c)
      : amp::GradScaler(o, c.get()), comm(std::move(c)) {}
  std::shared_ptr<comm::Communicator> comm;
};

void init_amp(py::module_& top) {
  py::module_ m = top.def_submodule("amp", "Mixed precision: dynamic loss scaling (see kirzl/amp.hpp for the policy).");
  py::class_<PyGradScaler>(m, "GradScaler", R"doc(
Dynamic loss scaling for f16 training (torch.amp.GradScaler):

    scaler.scale(loss).backward(); scaler.unscale_(opt)  # optional, before clipping
    scaler.step(opt); scaler.update()

step() skips the optimizer step when a gradient is inf/NaN; given `comm` (a Communicator), the
flag is all-reduced so every rank skips alike. update() halves the scale after a skip and
doubles it after growth_interval clean steps. bf16/f16 parameters get f32 master weights in the
optimizers themselves.
)doc")
      .def(py::init([](double init_scale, double growth_factor, double backoff_factor, int64_t growth_interval,
                       bool enabled, std::shared_ptr<comm::Communicator> c) {
             return std::make_unique<PyGradScaler>(amp::GradScalerOptions{.init_scale = init_scale, .growth_factor = growth_factor,
                                                            .backoff_factor = backoff_factor,
                                                            .growth_interval = growth_interval, .enabled = enabled},
                                     std::move(c));
           }),
           py::arg("init_scale") = 65536.0, py::arg("growth_factor") = 2.0, py::arg("backoff_factor") = 0.5,
           py::arg("growth_interval") = 2000, py::arg("enabled") = true, py::arg("comm") = nullptr)
      .def("scale", &amp::GradScaler::scale, py::arg("loss"), "loss * scale (a 16-bit loss is converted to f32 first).")
      .def("unscale_", [](PyGradScaler& s, Optimizer& o) { py::gil_scoped_release rel; s.unscale_(o); },
           py::arg("optimizer"), "Divides the optimizer's gradients by the scale in place and records inf/NaN.")
      .def("step", [](PyGradScaler& s, Optimizer& o) { py::gil_scoped_release rel; return s.step(o); },
           py::arg("optimizer"), "Unscales (unless done) and steps unless a gradient overflowed; True when it stepped.")
      .def("update", &amp::GradScaler::update, "Backs off after a skipped step, grows after growth_interval clean ones.")
      .def("get_scale", &amp::GradScaler::get_scale, "The current scale (1 when disabled).")
      .def("growth_tracker", &amp::GradScaler::growth_tracker, "Consecutive clean steps towards the next growth.")
      .def("is_enabled", &amp::GradScaler::is_enabled)
      .def("last_step_skipped", &amp::GradScaler::last_step_skipped, py::arg("optimizer"),
           "True when the last step() of the optimizer was skipped.")
      .def("state_dict", [](const PyGradScaler& s) { return state_dict_to_py(s.state_dict()); },
           "{'scale', 'growth_factor', 'backoff_factor', 'growth_interval', 'growth_tracker'}.")
      .def("load_state_dict", [](PyGradScaler& s, const py::object& d) { s.load_state_dict(state_dict_from_py(d)); },
           py::arg("state_dict"), "Restores a state_dict() (validated first; unchanged on error).");
}

}  // namespace

// Adam's and AdamW's `capturable` (AdamOptions::capturable in the C++ header).
constexpr const char* kCapturableDoc =
    "True when the step counts and lr live on the parameters' device, so that step() can run inside a "
    "kirzl.cuda.Graph capture (each replay advances them). The first step must run before the capture.";

void init_optim(py::module_& top) {
  py::module_ m = top.def_submodule("optim", "Optimizers, learning-rate schedules and gradient clipping.");

  py::class_<Optimizer>(m, "Optimizer", R"doc(
Base of the optimizers. `params` is an iterable of tensors or of parameter-group dicts
{"params": [...], "lr": ..., "weight_decay": ...}. step() updates parameters in place (every
handle and view sees it) and releases the GIL.
)doc")
      .def("step", [](Optimizer& o) { py::gil_scoped_release rel; o.step(); }, "One update of every parameter with a gradient.")
      .def("zero_grad", &Optimizer::zero_grad, py::arg("set_to_none") = true, "Drops every gradient (set_to_none) or zeroes them in place (keeps DDP bucket views).")
      .def_property_readonly("name", &Optimizer::name)
      .def("num_groups", &Optimizer::num_groups, "Number of parameter groups.")
      .def("num_params", &Optimizer::num_params, "Number of parameters over all groups.")
      .def("params", &Optimizer::params, py::arg("group") = 0, "The parameters of a group (handles shared with the caller).")
      .def("lr", &Optimizer::lr, py::arg("group") = 0, "Current learning rate of a group.")
      .def("set_lr", &Optimizer::set_lr, py::arg("lr"), py::arg("group") = -1, "Sets a group's lr (every group for -1).")
      .def("initial_lr", &Optimizer::initial_lr, py::arg("group") = 0, "The lr a group started with (the base schedules scale).")
      .def("weight_decay", &Optimizer::weight_decay, py::arg("group") = 0, "Weight decay of a group.")
      .def("step_count", &Optimizer::step_count, py::arg("param_index"), "Steps taken by parameter `param_index`.")
      .def("state_dict", [](const Optimizer& o) { return state_dict_to_py(o.state_dict()); }, "A copy of the state.")
      .def("load_state_dict", [](Optimizer& o, const py::object& d) { o.load_state_dict(state_dict_from_py(d)); },
           py::arg("state_dict"), "Restores a state_dict() (validated first; unchanged on error).")
      .def("check_state_dict", [](const Optimizer& o, const py::object& d) { o.check_state_dict(state_dict_from_py(d)); },
           py::arg("state_dict"), "Raises what load_state_dict would raise, changing nothing.");

  py::class_<SGD, Optimizer>(m, "SGD", "SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).")
      .def(py::init([](const py::object& params, double lr, double momentum, double dampening, double wd, bool nesterov, bool maximize) {
             return std::make_unique<SGD>(groups_from(params), SGDOptions{.lr = lr, .momentum = momentum, .dampening = dampening,
                                                                         .weight_decay = wd, .nesterov = nesterov, .maximize = maximize});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
           py::arg("weight_decay") = 0.0, py::arg("nesterov") = false, py::arg("maximize") = false);
  py::class_<Adam, Optimizer>(m, "Adam", "Adam (torch.optim.Adam), L2 weight decay coupled into the gradient.")
      .def(py::init([](const py::object& params, double lr, const py::object& betas, double eps, double wd, bool amsgrad, bool maximize,
                       bool capturable) {
             return std::make_unique<Adam>(groups_from(params), AdamOptions{.lr = lr, .betas = betas_of(betas), .eps = eps,
                                                                           .weight_decay = wd, .amsgrad = amsgrad, .maximize = maximize,
                                                                           .capturable = capturable});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = py::make_tuple(0.9, 0.999), py::arg("eps") = 1e-8,
           py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false, py::arg("maximize") = false,
           py::arg("capturable") = false)
      .def_property_readonly("capturable", [](const Adam& o) { return o.options().capturable; }, kCapturableDoc);
  py::class_<AdamW, Optimizer>(m, "AdamW", "AdamW (torch.optim.AdamW), decoupled weight decay.")
      .def(py::init([](const py::object& params, double lr, const py::object& betas, double eps, double wd, bool amsgrad, bool maximize,
                       bool capturable) {
             return std::make_unique<AdamW>(groups_from(params), AdamWOptions{.lr = lr, .betas = betas_of(betas), .eps = eps,
                                                                             .weight_decay = wd, .amsgrad = amsgrad, .maximize = maximize,
                                                                             .capturable = capturable});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = py::make_tuple(0.9, 0.999), py::arg("eps") = 1e-8,
           py::arg("weight_decay") = 0.01, py::arg("amsgrad") = false, py::arg("maximize") = false,
           py::arg("capturable") = false)
      .def_property_readonly("capturable", [](const AdamW& o) { return o.options().capturable; }, kCapturableDoc);
  py::class_<LAMB, Optimizer>(m, "LAMB", "LAMB (You et al. 2019): layer-wise trust ratio over Adam moments.")
      .def(py::init([](const py::object& params, double lr, const py::object& betas, double eps, double wd) {
             return std::make_unique<LAMB>(groups_from(params), LAMBOptions{.lr = lr, .betas = betas_of(betas), .eps = eps, .weight_decay = wd});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = py::make_tuple(0.9, 0.999), py::arg("eps") = 1e-6,
           py::arg("weight_decay") = 0.01);

  py::class_<LRScheduler>(m, "LRScheduler", "Base of the schedules; holds the optimizer (kept alive).")
      .def("step", &LRScheduler::step, "Advances one step and sets every group's lr.")
      .def("get_lr", &LRScheduler::get_lr, "The lr of every group at last_step().")
      .def("last_step", &LRScheduler::last_step, "Number of step() calls so far.")
      .def("lr_at", &LRScheduler::lr_at, py::arg("step"), py::arg("base_lr"), "The lr for `step` of a group whose base lr is `base_lr`.")
      .def("state_dict", [](const LRScheduler& s) { return state_dict_to_py(s.state_dict()); }, "{'last_step': 0-d tensor}.")
      .def("load_state_dict", [](LRScheduler& s, const py::object& d) { s.load_state_dict(state_dict_from_py(d)); }, py::arg("state_dict"), "Restores a state_dict() (validated first; unchanged on error).");
  py::class_<ConstantLR, LRScheduler>(m, "ConstantLR", "lr = base lr at every step.")
      .def(py::init<Optimizer&>(), py::arg("optimizer"), py::keep_alive<1, 2>());
  py::class_<StepLR, LRScheduler>(m, "StepLR", "lr = base * gamma ** (step // step_size).")
      .def(py::init([](Optimizer& o, int64_t step_size, double gamma) { return std::make_unique<StepLR>(o, StepLROptions{step_size, gamma}); }),
           py::arg("optimizer"), py::arg("step_size") = 1, py::arg("gamma") = 0.1, py::keep_alive<1, 2>());
  py::class_<CosineWithWarmup, LRScheduler>(m, "CosineWithWarmup", "Linear warm-up from 0, then a half cosine to min_lr.")
      .def(py::init([](Optimizer& o, int64_t warmup, int64_t total, double min_lr) {
             return std::make_unique<CosineWithWarmup>(o, CosineWithWarmupOptions{.warmup_steps = warmup, .total_steps = total, .min_lr = min_lr});
           }),
           py::arg("optimizer"), py::kw_only(), py::arg("warmup_steps") = 0, py::arg("total_steps"), py::arg("min_lr") = 0.0,
           py::keep_alive<1, 2>());
  py::class_<LinearDecay, LRScheduler>(m, "LinearDecay", "Optional warm-up, then linear from base to base * end_factor.")
      .def(py::init([](Optimizer& o, int64_t total, double end_factor, int64_t warmup) {
             return std::make_unique<LinearDecay>(o, LinearDecayOptions{.total_steps = total, .end_factor = end_factor, .warmup_steps = warmup});
           }),
           py::arg("optimizer"), py::kw_only(), py::arg("total_steps"), py::arg("end_factor") = 0.0, py::arg("warmup_steps") = 0,
           py::keep_alive<1, 2>());

  m.def("clip_grad_norm", [](const std::vector<Tensor>& p, double max_norm, double norm_type, bool err) {
          py::gil_scoped_release rel;
          return clip_grad_norm(p, max_norm, norm_type, err);
        },
        py::arg("params"), py::arg("max_norm"), py::arg("norm_type") = 2.0, py::arg("error_if_nonfinite") = false,
        "Scales gradients in place so their global norm is at most max_norm; returns the norm before clipping.");
  m.def("clip_grad_norm_", [](const std::vector<Tensor>& p, double max_norm, double norm_type, bool err) {
          py::gil_scoped_release rel;
          return clip_grad_norm_(p, max_norm, ClipOptions{.norm_type = norm_type, .error_if_nonfinite = err});
        },
        py::arg("params"), py::arg("max_norm"), py::arg("norm_type") = 2.0, py::arg("error_if_nonfinite") = false,
        "As clip_grad_norm, but returns the norm as a 0-d f32 tensor on the gradients' device: no host sync on CUDA.");
  m.def("clip_grad_value", &clip_grad_value, py::arg("params"), py::arg("clip_value"), "Clamps every gradient element into [-clip_value, clip_value] in place.");
  init_amp(top);
}

}  // namespace kirzl::python

