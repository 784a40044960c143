// kirzl.nn: Module (subclassable from Python), the standard layers, containers, init, models.
//
// Note [python modules]: kirzl.nn.Module is the C++ nn::Module with a pybind11 trampoline
// (PyModule) and pybind11's smart_holder, so a Python subclass *is* a C++ Module: it can sit in a
// Sequential, be wrapped by DistributedDataParallel, and be saved by save_checkpoint. Its
// `forward` is found through the trampoline (taking the GIL when C++ calls it). Parameters and
// submodules are registered by assigning them as attributes (Module.__setattr__, defined in
// python/kirzl/nn/__init__.py): a Tensor with requires_grad=True becomes a parameter, a Module a
// child, in assignment order (the order DDP buckets follow). register_parameter/register_buffer/
// register_module do the same explicitly.
#include "common.h"

namespace kirzl::python {

namespace {

class PyModule : public nn::Module, public py::trampoline_self_life_support {
 public:
  using nn::Module::Module;
  Tensor forward(const Tensor& x) override { PYBIND11_OVERRIDE(Tensor, nn::Module, forward, x); }
  std::string repr() const override {
    py::gil_scoped_acquire gil;
    py::function o = py::get_override(static_cast<const nn::Module*>(this), "repr");
    if (o) return o().cast<std::string>();
    py::object self = py::cast(static_cast<const nn::Module*>(this), py::return_value_policy::reference);
    return py::str(py::type::of(self).attr("__name__")).cast<std::string>() + "()";
  }
  void train(bool on) override { PYBIND11_OVERRIDE(void, nn::Module, train, on); }
  Tensor reg_param(const std::string& n, Tensor t, bool rg) { return register_parameter(n, std::move(t), rg); }
  Tensor reg_buffer(const std::string& n, Tensor t) { return register_buffer(n, std::move(t)); }
  void reg_child(const std::string& n, std::shared_ptr<nn::Module> m) { add_child(n, std::move(m)); }
};

PyModule& python_module(nn::Module& m, const char* what) {
  auto* p = dynamic_cast<PyModule*>(&m);
  KIRZL_CHECK(p != nullptr, what, ": only modules defined in Python can register new members (", m.repr(), ")");
  return *p;
}

py::list named_list(const std::vector<std::pair<std::string, Tensor>>& v) {
  py::list out;
  for (const auto& [n, t] : v) out.append(py::make_tuple(n, t));
  return out;
}

std::array<int64_t, 2> pair_of(const py::object& o) {
  if (py::isinstance<py::int_>(o)) return {o.cast<int64_t>(), o.cast<int64_t>()};
  auto v = o.cast<std::vector<int64_t>>();
  KIRZL_CHECK(v.size() == 2, "expected an int or a pair of ints, got ", v.size(), " values");
  return {v[0], v[1]};
}

}  // namespace

py::dict state_dict_to_py(const StateDict& sd) {
  py::dict d;
  for (const auto& [n, t] : sd) d[py::str(n)] = t;
  return d;
}

StateDict state_dict_from_py(const py::handle& h) {
  StateDict sd;
  for (auto item : py::reinterpret_borrow<py::dict>(h)) sd.insert(item.first.cast<std::string>(), to_tensor(item.second));
  return sd;
}

void init_nn(py::module_& top) {
  py::module_ m = top.def_submodule("nn", "Modules: layers, containers, initialisation.");
  using nn::Module;
  py::class_<Module, PyModule, py::smart_holder>(m, "Module", py::dynamic_attr(), R"doc(
Base of every layer and model. Subclass it in Python: call super().__init__(), assign parameters
(tensors with requires_grad=True, e.g. kirzl.nn.Parameter(...)) and submodules as attributes, and
define forward(x). Such a module works everywhere a C++ module does (Sequential, DDP, checkpoints).
)doc")
      .def(py::init<>())
      .def("forward", [](Module& self, const Tensor& x) {
             py::gil_scoped_release rel;
             return self.forward(x);
           }, py::arg("x"), "The computation (releases the GIL; Python forwards take it back).")
      .def("register_forward_pre_hook", [](Module& self, py::function hook) {
             // The hook runs on whatever thread calls the module, often with the GIL released
             // (forward() releases it), and its last copy may go with the module anywhere: take
             // the GIL to call it and to let go of it.
             std::shared_ptr<py::function> fn(new py::function(std::move(hook)), [](py::function* f) {
               py::gil_scoped_acquire gil;
               delete f;
             });
             return self.register_forward_pre_hook([fn](Module& m) {
               py::gil_scoped_acquire gil;
               (*fn)(py::cast(&m, py::return_value_policy::reference));
             });
           }, py::arg("hook"),
           "Registers hook(module), run before every call module(x) (and run_forward_pre_hooks()), after the "
           "hooks registered before it; returns a handle for remove_forward_pre_hook.")
      .def("remove_forward_pre_hook", &Module::remove_forward_pre_hook, py::arg("handle"),
           "Removes the hook with this handle; False when this module has none.")
      .def("run_forward_pre_hooks", [](Module& self) {
             py::gil_scoped_release rel;
             self.run_forward_pre_hooks();
           }, "Runs this module's forward pre-hooks (module(x) does, then forward): call it before reading a "
              "submodule's parameters without calling it (sharded DDP waits for them there).")
      .def("repr", &Module::repr, "One-line description, e.g. 'Linear(in_features=784, ...)'.")
      .def("str", &Module::str, "Multi-line tree of this module and its children.")
      .def("__repr__", &Module::str)
      .def("parameters", &Module::parameters, py::arg("recurse") = true, "Parameters in registration order.")
      .def("named_parameters", [](const Module& s, bool r) { return named_list(s.named_parameters(r)); }, py::arg("recurse") = true, "(dotted name, parameter) pairs: own parameters first, then children's.")
      .def("buffers", &Module::buffers, py::arg("recurse") = true, "Buffers (saved, not trained).")
      .def("named_buffers", [](const Module& s, bool r) { return named_list(s.named_buffers(r)); }, py::arg("recurse") = true, "(dotted name, buffer) pairs.")
      .def("named_children", [](const Module& s) {
        py::list out;
        for (const auto& [n, c] : s.named_children()) out.append(py::make_tuple(n, c));
        return out;
      }, "(name, module) of the direct children.")
      .def("children", [](const Module& s) {
        py::list out;
        for (const auto& c : s.named_children()) out.append(c.second);
        return out;
      }, "Direct children in registration order.")
      .def("num_parameters", &Module::num_parameters, "Total number of parameter elements.")
      .def("train", [](Module& s, bool on) -> Module& { s.train(on); return s; }, py::arg("mode") = true,
           py::return_value_policy::reference_internal, "Training mode for this module and its children (Dropout, BatchNorm); returns self.")
      .def("eval", [](Module& s) -> Module& { s.eval(); return s; }, py::return_value_policy::reference_internal, "train(False); returns self.")
      .def("is_training", &Module::is_training, "Whether the module is in training mode.")
      .def_property_readonly("training", &Module::is_training)
      .def("to", [](Module& s, const py::object& target) -> Module& {
             if (py::isinstance<Device>(target)) return s.to(target.cast<Device>());
             if (py::isinstance<py::str>(target)) {
               std::string str = target.cast<std::string>();
               if (str.rfind("cpu", 0) == 0 || str.rfind("cuda", 0) == 0) return s.to(Device(str));
             }
             return s.to(dtype_from_py(target));
           }, py::arg("target"), py::return_value_policy::reference_internal,
           "Moves parameters and buffers to a device, or converts floating ones to a dtype, in place; returns self.")
      .def("state_dict", [](const Module& s) { return state_dict_to_py(s.state_dict()); },
           "Parameters and buffers by dotted name (handles, not copies).")
      .def("load_state_dict", [](Module& s, const py::object& d, bool strict) { s.load_state_dict(state_dict_from_py(d), strict); },
           py::arg("state_dict"), py::arg("strict") = true, "Copies values in place (tensors or NumPy arrays).")
      .def("check_state_dict", [](const Module& s, const py::object& d, bool strict) { s.check_state_dict(state_dict_from_py(d), strict); },
           py::arg("state_dict"), py::arg("strict") = true,
           "Raises what load_state_dict would raise, changing nothing.")
      .def("zero_grad", &Module::zero_grad, py::arg("set_to_none") = true, "Clears gradients: drops them, or zeroes them in place.")
      .def("register_parameter", [](Module& s, const std::string& n, const py::object& t, bool rg) {
             return python_module(s, "register_parameter").reg_param(n, to_tensor(t), rg);
           }, py::arg("name"), py::arg("tensor"), py::arg("requires_grad") = true,
           "Registers a parameter (sets requires_grad) and returns its handle. Python-defined modules only.")
      .def("register_buffer", [](Module& s, const std::string& n, const py::object& t) {
             return python_module(s, "register_buffer").reg_buffer(n, to_tensor(t));
           }, py::arg("name"), py::arg("tensor"),
           "Registers a buffer (state saved in state_dict but not trained) and returns its handle. Python-defined modules only.")
      .def("register_module", [](Module& s, const std::string& n, std::shared_ptr<Module> c) {
             python_module(s, "register_module").reg_child(n, c);
             return c;
           }, py::arg("name"), py::arg("module"),
           "Registers a submodule under `name` (its parameters become name.*) and returns it. Python-defined modules only.");

  py::class_<nn::Linear, Module, py::smart_holder>(m, "Linear", py::dynamic_attr(), "y = x W^T + b.")
      .def(py::init([](int64_t in, int64_t out, bool bias, const py::object& dtype) {
             return std::make_shared<nn::Linear>(in, out, nn::LinearOptions{.bias = bias, .dtype = dtype.is_none() ? DType::f32 : dtype_from_py(dtype)});
           }),
           py::arg("in_features"), py::arg("out_features"), py::arg("bias") = true, py::arg("dtype") = py::none())
      .def_property_readonly("weight", [](const nn::Linear& l) { return l.weight; })
      .def_property_readonly("bias", [](const nn::Linear& l) -> py::object { return l.bias.defined() ? py::cast(l.bias) : py::none(); })
      .def_readonly("in_features", &nn::Linear::in_features)
      .def_readonly("out_features", &nn::Linear::out_features);

  py::class_<nn::Conv2d, Module, py::smart_holder>(m, "Conv2d", py::dynamic_attr(), "2-D convolution layer.")
      .def(py::init([](int64_t in, int64_t out, const py::object& k, const py::object& stride, const py::object& padding,
                       const py::object& dilation, int64_t groups, bool bias, const py::object& dtype) {
             nn::Conv2dLayerOptions o{.stride = pair_of(stride), .padding = pair_of(padding), .dilation = pair_of(dilation),
                                      .groups = groups, .bias = bias, .dtype = dtype.is_none() ? DType::f32 : dtype_from_py(dtype)};
             return std::make_shared<nn::Conv2d>(in, out, pair_of(k), o);
           }),
           py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
           py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("bias") = true,
           py::arg("dtype") = py::none())
      .def_property_readonly("weight", [](const nn::Conv2d& l) { return l.weight; })
      .def_property_readonly("bias", [](const nn::Conv2d& l) -> py::object { return l.bias.defined() ? py::cast(l.bias) : py::none(); })
      .def_readonly("in_channels", &nn::Conv2d::in_channels)
      .def_readonly("out_channels", &nn::Conv2d::out_channels);

  auto bn_opts = [](double eps, double momentum, bool affine, bool track) {
    return nn::BatchNormOptions{.eps = eps, .momentum = momentum, .affine = affine, .track_running_stats = track};
  };
  py::class_<nn::BatchNorm2d, Module, py::smart_holder>(m, "BatchNorm2d", py::dynamic_attr(), "Batch normalisation over [N, C, H, W].")
      .def(py::init([bn_opts](int64_t n, double eps, double momentum, bool affine, bool track) {
             return std::make_shared<nn::BatchNorm2d>(n, bn_opts(eps, momentum, affine, track));
           }),
           py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1, py::arg("affine") = true,
           py::arg("track_running_stats") = true)
      .def_property_readonly("weight", [](const nn::BatchNorm2d& l) { return l.weight; })
      .def_property_readonly("bias", [](const nn::BatchNorm2d& l) { return l.bias; })
      .def_property_readonly("running_mean", [](const nn::BatchNorm2d& l) { return l.running_mean; })
      .def_property_readonly("running_var", [](const nn::BatchNorm2d& l) { return l.running_var; })
      .def_readonly("num_features", &nn::BatchNorm2d::num_features);

  py::class_<nn::SyncBatchNorm, nn::BatchNorm2d, py::smart_holder>(m, "SyncBatchNorm", py::dynamic_attr(),
                                                                    "BatchNorm2d with statistics over every rank's batch.")
      .def(py::init([bn_opts](int64_t n, const py::object& group, double eps, double momentum, bool affine, bool track) {
             std::shared_ptr<comm::Communicator> c = py::isinstance<PyProcessGroup>(group)
                                                         ? group.cast<const PyProcessGroup&>().get().communicator()
                                                         : group.cast<std::shared_ptr<comm::Communicator>>();
             return std::make_shared<nn::SyncBatchNorm>(n, c, bn_opts(eps, momentum, affine, track));
           }),
           py::arg("num_features"), py::arg("group"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("track_running_stats") = true);

  py::class_<nn::LayerNorm, Module, py::smart_holder>(m, "LayerNorm", py::dynamic_attr(), "Layer normalisation over trailing dims.")
      .def(py::init([](const py::object& shape, double eps, bool affine) {
             return std::make_shared<nn::LayerNorm>(shape_from_py(shape), nn::LayerNormOptions{.eps = eps, .elementwise_affine = affine});
           }),
           py::arg("normalized_shape"), py::arg("eps") = 1e-5, py::arg("elementwise_affine") = true)
      .def_property_readonly("weight", [](const nn::LayerNorm& l) { return l.weight; })
      .def_property_readonly("bias", [](const nn::LayerNorm& l) { return l.bias; });

  py::class_<nn::Embedding, Module, py::smart_holder>(m, "Embedding", py::dynamic_attr(), "Lookup table [num, dim].")
      .def(py::init([](int64_t n, int64_t d) { return std::make_shared<nn::Embedding>(n, d); }), py::arg("num_embeddings"),
           py::arg("embedding_dim"))
      .def_property_readonly("weight", [](const nn::Embedding& l) { return l.weight; });

  py::class_<nn::Dropout, Module, py::smart_holder>(m, "Dropout", py::dynamic_attr(), "Dropout while training.")
      .def(py::init([](double p, Generator* g) { return std::make_shared<nn::Dropout>(p, g); }), py::arg("p") = 0.5,
           py::arg("generator").none(true) = py::none(), py::keep_alive<1, 3>())
      .def_readonly("p", &nn::Dropout::p);
  py::class_<nn::ReLU, Module, py::smart_holder>(m, "ReLU", py::dynamic_attr(), "max(x, 0).").def(py::init([] { return std::make_shared<nn::ReLU>(); }));
  py::class_<nn::GELU, Module, py::smart_holder>(m, "GELU", py::dynamic_attr(), "GELU activation (approximate: 'none' or 'tanh').")
      .def(py::init([](const std::string& a) {
             KIRZL_CHECK(a == "none" || a == "tanh", "GELU: approximate must be 'none' or 'tanh', got '", a, "'");
             return std::make_shared<nn::GELU>(a == "tanh" ? GeluApproximation::Tanh : GeluApproximation::None);
           }),
           py::arg("approximate") = "none");
  py::class_<nn::Flatten, Module, py::smart_holder>(m, "Flatten", py::dynamic_attr(), "Flattens dims start_dim..end_dim (default: all but the batch dim).")
      .def(py::init([](int64_t s, int64_t e) { return std::make_shared<nn::Flatten>(s, e); }), py::arg("start_dim") = 1,
           py::arg("end_dim") = -1);
  py::class_<nn::MaxPool2d, Module, py::smart_holder>(m, "MaxPool2d", py::dynamic_attr(), "Max pooling (stride 0: equal to kernel_size).")
      .def(py::init([](int64_t k, int64_t s, int64_t p) { return std::make_shared<nn::MaxPool2d>(k, s, p); }),
           py::arg("kernel_size"), py::arg("stride") = 0, py::arg("padding") = 0);
  py::class_<nn::AvgPool2d, Module, py::smart_holder>(m, "AvgPool2d", py::dynamic_attr(), "Average pooling (stride 0: equal to kernel_size).")
      .def(py::init([](int64_t k, int64_t s, int64_t p) { return std::make_shared<nn::AvgPool2d>(k, s, p); }),
           py::arg("kernel_size"), py::arg("stride") = 0, py::arg("padding") = 0);

  py::class_<nn::Sequential, Module, py::smart_holder>(m, "Sequential", py::dynamic_attr(),
                                                       "Runs its children in order; children are named '0', '1', ...")
      .def(py::init([](py::args mods) {
        auto s = std::make_shared<nn::Sequential>();
        for (auto h : mods) s->push_back(h.cast<std::shared_ptr<Module>>());
        return s;
      }))
      .def("append", [](nn::Sequential& s, std::shared_ptr<Module> mod) { s.push_back(std::move(mod)); }, py::arg("module"), "Appends a module.")
      .def("push_back", [](nn::Sequential& s, std::shared_ptr<Module> mod) { s.push_back(std::move(mod)); }, py::arg("module"), "Appends a module (C++ name).")
      .def("__len__", &nn::Sequential::size)
      .def("size", &nn::Sequential::size, "Number of layers.")
      .def("__getitem__", [](const nn::Sequential& s, int64_t i) {
        const auto n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("Sequential index out of range");
        return s.named_children()[i].second;
      })
      .def("__iter__", [](const nn::Sequential& s) {
        py::list l;
        for (const auto& c : s.named_children()) l.append(c.second);
        return py::iter(l);
      });
  py::class_<nn::ModuleList, Module, py::smart_holder>(m, "ModuleList", py::dynamic_attr(), "An indexable list of modules.")
      .def(py::init([](const py::object& mods) {
             auto s = std::make_shared<nn::ModuleList>();
             if (!mods.is_none())
               for (auto h : mods) s->push_back(h.cast<std::shared_ptr<Module>>());
             return s;
           }),
           py::arg("modules") = py::none())
      .def("append", [](nn::ModuleList& s, std::shared_ptr<Module> mod) { s.push_back(std::move(mod)); }, py::arg("module"), "Appends a module.")
      .def("__len__", &nn::ModuleList::size)
      .def("__getitem__", [](const nn::ModuleList& s, int64_t i) {
        const auto n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("ModuleList index out of range");
        return s.named_children()[i].second;
      })
      .def("__iter__", [](const nn::ModuleList& s) {
        py::list l;
        for (const auto& c : s.named_children()) l.append(c.second);
        return py::iter(l);
      });

  py::module_ init = m.def_submodule("init", "In-place parameter initialisation from a seeded generator.");
  init.def("uniform_", [](Tensor t, double lo, double hi, Generator* g) { nn::init::uniform_(t, lo, hi, g); return t; },
           py::arg("t"), py::arg("low"), py::arg("high"), py::arg("generator").none(true) = py::none(), "Fills `t` from U(low, high) in place.");
  init.def("normal_", [](Tensor t, double mean, double std, Generator* g) { nn::init::normal_(t, mean, std, g); return t; },
           py::arg("t"), py::arg("mean") = 0.0, py::arg("std") = 1.0, py::arg("generator").none(true) = py::none(),
           "Fills `t` from N(mean, std^2) in place.");
  init.def("zeros_", [](Tensor t) { nn::init::zeros_(t); return t; }, py::arg("t"), "Fills `t` with zeros in place.");
  init.def("ones_", [](Tensor t) { nn::init::ones_(t); return t; }, py::arg("t"), "Fills `t` with ones in place.");
  init.def("constant_", [](Tensor t, double v) { nn::init::constant_(t, v); return t; }, py::arg("t"), py::arg("value"), "Fills `t` with `value` in place.");
  init.def("fans", &nn::init::fans, py::arg("weight"), "(fan_in, fan_out) of a weight.");
  init.def("kaiming_uniform_", [](Tensor t, double a, Generator* g) { nn::init::kaiming_uniform_(t, a, g); return t; },
           py::arg("t"), py::arg("a") = 0.0, py::arg("generator").none(true) = py::none(),
           "Kaiming-uniform in place: U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)) (PyTorch's Linear/Conv2d default uses a = sqrt(5)).");
  init.def("xavier_uniform_", [](Tensor t, double gain, Generator* g) { nn::init::xavier_uniform_(t, gain, g); return t; },
           py::arg("t"), py::arg("gain") = 1.0, py::arg("generator").none(true) = py::none(),
           "Xavier/Glorot-uniform in place: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).");

  py::module_ models = top.def_submodule("models", "The Fashion-MNIST models of the examples and benchmarks.");
  models.def("fashion_mlp", &models::fashion_mlp, "Flatten, 784-256-128-10 with ReLU.");
  models.def("fashion_cnn", &models::fashion_cnn, "conv32-pool-conv64-pool-fc128-fc10.");
}

}  // namespace kirzl::python
