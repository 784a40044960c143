// Shared helpers of the kirzl._C bindings: GIL-safe Python object holders, conversions between
// Python values and kirzl types, and the per-area init functions called by module.cpp.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <kirzl/kirzl.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;

namespace kirzl::python {

/// A Python object that may be released from any thread (a tensor deleter, an autograd hook
/// destroyed when the graph is freed with the GIL released): the destructor takes the GIL.
class GilObject {
 public:
  explicit GilObject(py::object o) : obj_(std::move(o)) {}
  ~GilObject() {
    if (!Py_IsInitialized()) {
      obj_.release();  // interpreter gone: leak rather than touch a dead runtime
      return;
    }
    py::gil_scoped_acquire gil;
    obj_ = py::object();
  }
  GilObject(const GilObject&) = delete;
  GilObject& operator=(const GilObject&) = delete;
  const py::object& get() const { return obj_; }

 private:
  py::object obj_;
};

/// Elementwise work below this many elements runs with the GIL held: releasing and re-taking it
/// costs ~0.2 us, more than a small op. Larger ops, GEMMs, backward and collectives release it.
inline constexpr int64_t kReleaseGilAbove = 1 << 15;

/// Releases the GIL for the lifetime of the object when `release` is true.
class MaybeRelease {
 public:
  explicit MaybeRelease(bool release) {
    if (release) rel_.emplace();
  }

 private:
  std::optional<py::gil_scoped_release> rel_;
};

/// Python's view of the world ProcessGroup. It holds no reference to the communicator: every call
/// asks comm::init() (which returns the one world of the process), so Python objects that outlive
/// the interpreter's shutdown cannot keep MPI from being finalised at exit.
struct PyProcessGroup {
  comm::ProcessGroup get() const;
};

// ---- conversions ----
DType dtype_from_py(const py::handle& h);          // DType, "f32"/"float32", numpy dtype
Device device_from_py(const py::handle& h);        // Device or "cpu"/"cuda:N"
Shape shape_from_py(const py::handle& h);          // int or sequence of ints
py::tuple shape_to_py(const Shape& s);
/// A kirzl tensor for `obj`: a Tensor as is; a NumPy array or any buffer zero-copy when its dtype
/// and layout allow (else a copy); anything with __dlpack__ zero-copy; Python numbers/lists copied.
Tensor to_tensor(const py::handle& obj);
/// Zero-copy view of `obj` for in-place use (collectives): kirzl Tensor, __dlpack__ object or
/// writable C-contiguous NumPy array; otherwise Error{InvalidArgument}.
Tensor to_tensor_inplace(const py::handle& obj, const char* op);
/// Tensor from a NumPy array without copying (when copy is false and possible).
Tensor from_numpy(py::array arr, bool copy);
/// Tensor sharing the memory of a DLPack producer (object with __dlpack__, or a capsule).
Tensor from_dlpack(const py::object& obj);
py::object tensor_to_numpy(const Tensor& t);

py::dict state_dict_to_py(const StateDict& sd);
// An optimizer's `params`: an iterable of tensors, or of dicts {"params": [...], "lr": x,
// "weight_decay": y} (optim.cpp).
std::vector<optim::ParamGroup> groups_from(const py::object& params);
// The inverse: a list of such dicts (lr and weight_decay only where the group sets them).
py::list groups_to_py(const std::vector<optim::ParamGroup>& groups);
StateDict state_dict_from_py(const py::handle& h);

// ---- per-area registration ----
void init_errors(py::module_& m);
void init_tensor(py::module_& m);
void init_cuda(py::module_& m);  // after init_tensor: its signatures name Tensor
void init_dlpack(py::module_& m);
void init_autograd(py::module_& m);
void init_ops(py::module_& m);
void init_nn(py::module_& m);
void init_optim(py::module_& m);
void init_data(py::module_& m);
void init_io(py::module_& m);
void init_comm(py::module_& m);
void init_ddp(py::module_& m);  // after init_nn: its signatures name nn.Module
void init_ddp_checkpoints(py::module_& m);  // after init_io and init_ddp
void init_models_gpt(py::module_& m);  // after init_nn and init_data: GPT is an nn.Module
void init_profiler(py::module_& m);  // after init_tensor: its rows name DeviceType

}  // namespace kirzl::python
