// Autograd from Python: backward (GIL released), .grad, requires_grad, hooks (which take the GIL
// when the engine calls them), grad mode, kirzl.autograd.grad.
#include "common.h"

namespace kirzl::python {

namespace {

GradHook wrap_grad_hook(py::function fn) {
  auto holder = std::make_shared<GilObject>(std::move(fn));
  return [holder](const Tensor& grad) -> Tensor {
    py::gil_scoped_acquire gil;
    py::object r = holder->get()(grad);
    if (r.is_none()) return Tensor();
    return to_tensor(r);
  };
}

PostAccumulateGradHook wrap_post_hook(py::function fn) {
  auto holder = std::make_shared<GilObject>(std::move(fn));
  return [holder](Tensor& leaf) {
    py::gil_scoped_acquire gil;
    holder->get()(leaf);
  };
}

}  // namespace

void init_autograd(py::module_& m) {
  auto cls = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));

  py::class_<autograd::Node, std::shared_ptr<autograd::Node>>(m, "Node",
                                                               "One recorded operation of the autograd graph.")
      .def("name", &autograd::Node::name, "Name of the operation, e.g. 'MulBackward'.")
      .def_property_readonly("sequence_nr", &autograd::Node::sequence_nr)
      .def_property_readonly("next_functions", [](const autograd::Node& n) {
        py::list out;
        for (const auto& e : n.next_edges()) out.append(py::make_tuple(e.fn, e.input_nr));
        return out;
      })
      .def("__repr__", [](const autograd::Node& n) { return "<kirzl.Node " + n.name() + ">"; });

  cls.def_property(
         "requires_grad", &Tensor::requires_grad,
         [](Tensor& t, bool on) { t.requires_grad_(on); },
         "Whether gradients flow into this tensor. Settable on leaves (floating dtypes only).")
      .def("requires_grad_", &Tensor::requires_grad_, py::arg("requires_grad") = true,
           py::return_value_policy::reference_internal, "Marks a leaf as needing a gradient (floating dtypes only); returns self.")
      .def_property(
          "grad",
          [](const Tensor& t) -> py::object {
            Tensor g = t.grad();
            if (!g.defined()) return py::none();
            return py::cast(g);
          },
          [](Tensor& t, const py::object& g) { t.set_grad(g.is_none() ? Tensor() : to_tensor(g)); },
          "Accumulated gradient of a leaf, or None.")
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property_readonly("grad_fn", &Tensor::grad_fn, "The Node that produced this tensor (None for leaves).")
      .def_property_readonly("output_nr", &Tensor::output_nr)
      .def(
          "backward",
          [](const Tensor& t, const py::object& gradient, bool retain_graph) {
            Tensor g = gradient.is_none() ? Tensor() : to_tensor(gradient);
            py::gil_scoped_release rel;  // hooks written in Python take it back
            t.backward(g, retain_graph);
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = false,
          "Runs backward from this tensor (one element unless `gradient` is given). Releases the GIL.")
      .def("detach", &Tensor::detach, "Same data, no autograd history, requires_grad False.")
      .def("register_hook", [](const Tensor& t, py::function fn) { return t.register_hook(wrap_grad_hook(std::move(fn))); },
           py::arg("hook"),
           "hook(grad) -> Tensor | None, run when a gradient flows into this tensor; returns a handle.")
      .def("register_post_accumulate_grad_hook",
           [](const Tensor& t, py::function fn) { return t.register_post_accumulate_grad_hook(wrap_post_hook(std::move(fn))); },
           py::arg("hook"), "hook(leaf) run after this leaf's .grad is accumulated; returns a handle.")
      .def("remove_hook", &Tensor::remove_hook, py::arg("handle"), "Removes a hook registered on this tensor; False if the handle was not found.");

  m.def("grad_enabled", &grad_enabled, "Whether ops on this thread record a graph.");
  m.def("is_grad_enabled", &grad_enabled, "Whether ops on this thread record a graph.");
  m.def("set_grad_enabled", &set_grad_enabled, py::arg("enabled"), "Turns grad mode on or off for this thread.");

  auto ag = m.def_submodule("autograd", "The autograd engine.");
  ag.def(
      "backward",
      [](const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
        py::gil_scoped_release rel;
        autograd::backward(roots, grads, retain_graph);
      },
      py::arg("tensors"), py::arg("grad_tensors") = std::vector<Tensor>{}, py::arg("retain_graph") = false,
      "Runs one backward pass from several roots (grad_tensors: one per root; empty: ones for one-element roots). Releases the GIL.");
  ag.def(
      "grad",
      [](const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs, const std::vector<Tensor>& grad_outputs,
         bool retain_graph) {
        std::vector<Tensor> r;
        {
          py::gil_scoped_release rel;
          r = autograd::grad(outputs, inputs, grad_outputs, retain_graph);
        }
        py::list out;
        for (auto& g : r) out.append(g.defined() ? py::cast(g) : py::none());
        return out;
      },
      py::arg("outputs"), py::arg("inputs"), py::arg("grad_outputs") = std::vector<Tensor>{},
      py::arg("retain_graph") = false,
      "d(outputs)/d(inputs) without touching .grad; None where an input does not influence the outputs.");
}

}  // namespace kirzl::python
