// kirzl.profiler: where the time of a step goes, kernel by kernel (kirzl::profiler::Profile).
#include <kirzl/core/profiler.hpp>

#include "common.h"

namespace kirzl::python {

void init_profiler(py::module_& top) {
  py::module_ m = top.def_submodule("profiler", "Kernel times by kernel and by family (GEMM, attention, ...).");
  using profiler::Profile;
  using profiler::ProfileRow;

  py::class_<ProfileRow>(m, "ProfileRow", "The calls of one kernel (or kernel family) on one device type.")
      .def_readonly("name", &ProfileRow::name, "The kernel's name, or the family.")
      .def_readonly("device", &ProfileRow::device, "Where the calls ran (DeviceType.CPU or DeviceType.CUDA).")
      .def_readonly("calls", &ProfileRow::calls, "Calls recorded.")
      .def_readonly("host_ms", &ProfileRow::host_ms,
                    "Milliseconds the calling thread spent in the calls (a CUDA kernel's launch).")
      .def_readonly("device_ms", &ProfileRow::device_ms,
                    "Milliseconds the calls ran on the device (CUDA events; host_ms for CPU kernels).")
      .def_readonly("untimed_calls", &ProfileRow::untimed_calls,
                    "CUDA calls not in device_ms: device_time off, or made during a CUDA graph capture.")
      .def("__repr__", [](const ProfileRow& r) {
        return "ProfileRow(name='" + r.name + "', device=" + (r.device == DeviceType::CPU ? "cpu" : "cuda") +
               ", calls=" + std::to_string(r.calls) + ", device_ms=" + std::to_string(r.device_ms) + ")";
      });

  py::class_<Profile>(m, "Profile", R"doc(
Records the kernels the creating thread runs while it is active (as a context manager, from
``with`` to its end), and breaks their time down by kernel and by family::

    with kirzl.profiler.Profile() as prof:
        for _ in range(10):
            step()
    print(prof.table())
    gemm_ms = sum(r.device_ms for r in prof.by_family() if r.name == "gemm")

CUDA kernels are timed on the device with CUDA events around each call, which adds a little host
time per call: measure throughput without a Profile. Only this thread's kernel calls are counted
(not collectives, not a DataLoader's workers). One Profile at a time per thread.
)doc")
      .def(py::init([](bool device_time) { return std::make_unique<Profile>(profiler::ProfileOptions{.device_time = device_time}); }),
           py::arg("device_time") = true,
           "Starts recording. device_time=False times CUDA calls on the host only (their launch).")
      .def("__enter__", [](Profile& p) -> Profile& { return p; }, py::return_value_policy::reference)
      .def("__exit__", [](Profile& p, const py::object&, const py::object&, const py::object&) { p.stop(); })
      .def("stop", &Profile::stop, "Stops recording; the recorded calls stay.")
      .def_property_readonly("recording", &Profile::recording, "True until stop().")
      .def("reset", &Profile::reset, py::call_guard<py::gil_scoped_release>(),
           "Forgets the calls recorded so far (waiting for their CUDA events) and a timing error kept from them; "
           "recording goes on if it was on.")
      .def("by_kernel", &Profile::by_kernel, py::call_guard<py::gil_scoped_release>(),
           "One row per kernel and device type, largest device time first (waits for the CUDA events).")
      .def("by_family", &Profile::by_family, py::call_guard<py::gil_scoped_release>(),
           "The rows summed by kernel family, largest first.")
      .def("total_device_ms", &Profile::total_device_ms, py::call_guard<py::gil_scoped_release>(),
           "The device time of every recorded call, in milliseconds.")
      .def("table", &Profile::table, py::arg("max_kernels") = 20, py::call_guard<py::gil_scoped_release>(),
           "A printable table: the families, then the largest kernels, with their shares.");

  m.def("kernel_family", [](const std::string& k) { return std::string(profiler::kernel_family(k)); },
        py::arg("kernel"), "The family of a kernel name in a breakdown ('gemm', 'attention', ..., 'other').");
}

}  // namespace kirzl::python
