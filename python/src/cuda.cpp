// kirzl.cuda: device availability and selection, and CUDA graphs (kirzl::cuda::Graph).
#include "common.h"

namespace kirzl::python {

void init_cuda(py::module_& top) {
  py::module_ m = top.def_submodule("cuda", "CUDA devices and CUDA graphs.");
  m.def("device_count", &cuda::device_count, "CUDA devices this process can use (0 without CUDA).");
  m.def("is_available", &cuda::is_available, "True when device_count() > 0.");
  m.def("current_device", &cuda::current_device, "The calling thread's current CUDA device (raises UnsupportedError without one).");
  m.def("set_device", &cuda::set_device, py::arg("device"),
        "Makes `device` the calling thread's current CUDA device (raises UnsupportedError without one).");
  m.def(
      "synchronize", [](int device) {
        py::gil_scoped_release release;
        cuda::synchronize(device < 0 ? cuda::current_device() : device);
      },
      py::arg("device") = -1,
      "Waits until all work on every stream of `device` (-1: the current device) has completed; raises "
      "the error of an out-of-range index found by an earlier embedding or cross_entropy on that device.");
  m.def("is_capturing", &cuda::is_capturing, py::arg("device") = 0,
        "True while the calling thread's current stream of `device` is being captured into a CUDA graph.");

  py::enum_<cuda::CaptureMode>(m, "CaptureMode", "How a capture treats CUDA calls that are unsafe while capturing.")
      .value("Global", cuda::CaptureMode::Global, "unsafe calls from any thread fail while the capture runs")
      .value("ThreadLocal", cuda::CaptureMode::ThreadLocal, "unsafe calls from the capturing thread fail (the default)")
      .value("Relaxed", cuda::CaptureMode::Relaxed, "CUDA does not check; kirzl's own checks still apply");

  py::class_<cuda::Graph>(m, "Graph", R"doc(
A training step (or any device work) captured once as a CUDA graph and replayed with one launch,
as torch.cuda.CUDAGraph. Run a few steps eagerly first (optimizer state, cuDNN plans and the
allocator's cache are then in place), then:

    g = kirzl.cuda.Graph()
    loss = g.capture(lambda: train_step(static_x, static_y))   # records, computes nothing
    for x, y in loader:
        static_x.copy_(x); static_y.copy_(y)                     # new data into the same tensors
        g.replay()                                               # one launch
        print(loss.item())                                       # overwritten in place by each replay

The graph reads the tensors its step read at capture: copy new data into them, never rebind them.
Tensors made during the capture (the value `step` returns, for one) stay valid and are
overwritten by each replay. Inside the step, operations that cannot be captured (item(), to('cpu'),
synchronize, dropout with p > 0, collectives, optimizers other than Adam/AdamW with
capturable=True) raise UnsupportedError naming the op; the capture is then discarded and may be
tried again. Raises UnsupportedError on construction without CUDA or without a GPU.
)doc")
      .def(py::init([](int device, cuda::CaptureMode mode) {
             return std::make_unique<cuda::Graph>(cuda::GraphOptions{.device = device, .mode = mode});
           }),
           py::arg("device") = -1, py::arg("mode") = cuda::CaptureMode::ThreadLocal,
           "A Graph with nothing captured, for `device` (-1: the current device).")
      .def(
          "capture",
          [](cuda::Graph& g, const py::function& step) {
            // The step runs here, on this thread, with the GIL held: its Python code needs it, and
            // the capture is thread-local, so no other thread's CUDA calls are affected.
            py::object result = py::none();
            g.capture([&] { result = step(); });
            return result;
          },
          py::arg("step"), py::keep_alive<1, 2>(),  // the step, and the tensors its closure holds, live as long as the graph
          "Calls step() once while recording its device work into this graph and returns what it returned. "
          "The graph keeps `step` alive (and so the tensors it refers to, whose memory the replays use). "
          "Raises InvalidArgumentError when already captured; an exception inside step() discards the capture "
          "and propagates.")
      .def("replay", &cuda::Graph::replay,
           "Launches the captured work on the current stream (the host does not wait); ordered after the previous "
           "replay.")
      .def_property_readonly("captured", &cuda::Graph::captured, "True once capture() has succeeded.")
      .def_property_readonly("device", &cuda::Graph::device, "The CUDA device the graph captures on.");
}

}  // namespace kirzl::python
