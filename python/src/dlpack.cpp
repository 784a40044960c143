// DLPack in and out: Tensor.__dlpack__ / __dlpack_device__ and kirzl.from_dlpack. Both directions
// share memory (no copy); the consumer keeps the producer's memory alive until it is done.
//
// Streams: kirzl's CPU work is synchronous, and on CUDA a kirzl op has completed when it returns to
// Python, so `stream` is accepted and needs no extra synchronisation.
#include "dlpack.h"

#include "common.h"

namespace kirzl::python {

namespace {

DLDataType to_dl(DType t) {
  switch (t) {
    case DType::f32: return {kDLFloat, 32, 1};
    case DType::f64: return {kDLFloat, 64, 1};
    case DType::f16: return {kDLFloat, 16, 1};
    case DType::bf16: return {kDLBfloat, 16, 1};
    case DType::i32: return {kDLInt, 32, 1};
    case DType::i64: return {kDLInt, 64, 1};
    case DType::u8: return {kDLUInt, 8, 1};
    case DType::u16: return {kDLUInt, 16, 1};
  }
  return {kDLFloat, 32, 1};
}

DType from_dl(DLDataType t) {
  KIRZL_CHECK_CODE(t.lanes == 1, ErrorCode::Unsupported, "from_dlpack: vector dtypes (lanes = ", t.lanes,
                   ") are not supported");
  if (t.code == kDLFloat && t.bits == 32) return DType::f32;
  if (t.code == kDLFloat && t.bits == 64) return DType::f64;
  if (t.code == kDLFloat && t.bits == 16) return DType::f16;
  if (t.code == kDLBfloat && t.bits == 16) return DType::bf16;
  if (t.code == kDLInt && t.bits == 32) return DType::i32;
  if (t.code == kDLInt && t.bits == 64) return DType::i64;
  if (t.code == kDLUInt && t.bits == 8) return DType::u8;
  if (t.code == kDLBool && t.bits == 8) return DType::u8;
  if (t.code == kDLUInt && t.bits == 16) return DType::u16;
  KIRZL_FAIL(ErrorCode::Unsupported, "from_dlpack: DLPack dtype (code ", int(t.code), ", ", int(t.bits),
             " bits) has no kirzl dtype (supported: f32, f64, f16, bf16, i32, i64, u8/bool, u16)");
}

DLDevice to_dl(Device d) {
  if (d.is_cuda()) return {kDLCUDA, d.index()};
  return {kDLCPU, 0};
}

// What a kirzl-produced DLPack tensor owns: a handle to the tensor (keeps the storage alive) and
// the shape/strides arrays the DLTensor points at.
template <typename Managed>
struct Export {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
  Managed managed{};
};

template <typename Managed>
Managed* make_managed(const Tensor& t) {
  auto* ctx = new Export<Managed>();
  ctx->tensor = t;
  ctx->shape = t.shape().vec();
  ctx->strides = t.strides().vec();
  DLTensor& dl = ctx->managed.dl_tensor;
  dl.data = t.data_ptr();
  dl.device = to_dl(t.device());
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = to_dl(t.dtype());
  dl.shape = ctx->shape.data();
  dl.strides = ctx->strides.data();
  dl.byte_offset = 0;
  ctx->managed.manager_ctx = ctx;
  ctx->managed.deleter = [](Managed* self) { delete static_cast<Export<Managed>*>(self->manager_ctx); };
  return &ctx->managed;
}

void capsule_destructor_v0(PyObject* cap) {
  if (PyCapsule_IsValid(cap, "dltensor")) {  // never consumed: we still own it
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (m && m->deleter) m->deleter(m);
  }
}

void capsule_destructor_v1(PyObject* cap) {
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, "dltensor_versioned"));
    if (m && m->deleter) m->deleter(m);
  }
}

py::object to_dlpack(const Tensor& t, const py::object& max_version) {
  bool versioned = false;
  if (!max_version.is_none()) versioned = py::cast<py::tuple>(max_version)[0].cast<int>() >= 1;
  if (versioned) {
    auto* m = make_managed<DLManagedTensorVersioned>(t);
    m->version = {1, 0};
    m->flags = 0;
    PyObject* cap = PyCapsule_New(m, "dltensor_versioned", capsule_destructor_v1);
    if (!cap) {
      m->deleter(m);
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::object>(cap);
  }
  auto* m = make_managed<DLManagedTensor>(t);
  PyObject* cap = PyCapsule_New(m, "dltensor", capsule_destructor_v0);
  if (!cap) {
    m->deleter(m);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(cap);
}

// Wraps a consumed DLTensor as a kirzl tensor; `release` gives the producer's memory back.
Tensor wrap(const DLTensor& dl, std::function<void()> release, bool read_only) {
  DType dtype = from_dl(dl.dtype);
  Device dev;
  if (dl.device.device_type == kDLCPU || dl.device.device_type == kDLCUDAHost) dev = Device::cpu();
  else if (dl.device.device_type == kDLCUDA || dl.device.device_type == kDLCUDAManaged) dev = Device::cuda(dl.device.device_id);
  else {
    release();
    KIRZL_FAIL(ErrorCode::Unsupported, "from_dlpack: DLPack device type ", dl.device.device_type,
               " is not supported (kirzl takes CPU and CUDA memory)");
  }
  if (dl.ndim > kMaxDims) {
    release();
    KIRZL_FAIL(ErrorCode::InvalidArgument, "from_dlpack: ", dl.ndim, " dimensions; kirzl supports up to ", kMaxDims);
  }
  std::vector<int64_t> shape(dl.shape, dl.shape + dl.ndim), strides(dl.ndim);
  if (dl.strides) {
    for (int32_t d = 0; d < dl.ndim; ++d) {
      strides[d] = dl.strides[d];
      if (strides[d] < 0) {
        release();
        KIRZL_FAIL(ErrorCode::Unsupported, "from_dlpack: negative strides are not supported");
      }
    }
  } else {
    strides = contiguous_strides(Shape(shape)).vec();
  }
  auto* data = static_cast<char*>(dl.data) + dl.byte_offset;
  auto shared_release = std::make_shared<std::function<void()>>(std::move(release));
  Tensor t = kirzl::from_blob(data, Shape(shape), Shape(strides), dtype, dev, [shared_release](void*) { (*shared_release)(); });
  if (read_only) return t.clone();  // kirzl has no read-only tensors: a copy, so writes cannot reach the producer
  return t;
}

// Runs a DLPack deleter with the GIL held (NumPy's deleter decrefs Python objects) and drops the
// producer reference.
std::function<void()> releaser(std::function<void()> call_deleter, py::object producer) {
  auto keep = std::make_shared<GilObject>(std::move(producer));
  return [call_deleter = std::move(call_deleter), keep]() mutable {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    call_deleter();
    keep.reset();
  };
}

Tensor from_capsule(const py::object& cap, const py::object& producer) {
  PyObject* c = cap.ptr();
  if (PyCapsule_IsValid(c, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(c, "dltensor_versioned"));
    KIRZL_CHECK_CODE(m->version.major == 1, ErrorCode::Unsupported, "from_dlpack: DLPack version ", m->version.major,
                     ".", m->version.minor, " is not supported (kirzl reads 0.x and 1.x)");
    PyCapsule_SetName(c, "used_dltensor_versioned");
    auto rel = releaser([m] { if (m->deleter) m->deleter(m); }, producer);
    return wrap(m->dl_tensor, rel, (m->flags & kDLFlagBitmaskReadOnly) != 0);
  }
  if (PyCapsule_IsValid(c, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
    PyCapsule_SetName(c, "used_dltensor");
    auto rel = releaser([m] { if (m->deleter) m->deleter(m); }, producer);
    return wrap(m->dl_tensor, rel, false);
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument,
             "from_dlpack: expected an unused DLPack capsule ('dltensor' or 'dltensor_versioned'); a capsule can be "
             "consumed only once");
}

}  // namespace

Tensor from_dlpack(const py::object& obj) {
  if (PyCapsule_CheckExact(obj.ptr())) return from_capsule(obj, py::none());
  KIRZL_CHECK(py::hasattr(obj, "__dlpack__"), "from_dlpack: ", std::string(py::str(py::type::of(obj).attr("__name__"))),
              " has no __dlpack__ method");
  py::object cap;
  try {
    cap = obj.attr("__dlpack__")(py::arg("max_version") = py::make_tuple(1, 0));
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    cap = obj.attr("__dlpack__")();  // a producer from before DLPack 1.0
  }
  return from_capsule(cap, obj);
}

void init_dlpack(py::module_& m) {
  auto cls = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));
  cls.def(
      "__dlpack__",
      [](const Tensor& t, const py::object& stream, const py::object& max_version, const py::object& dl_device,
         const py::object& copy) {
        (void)stream;
        if (!dl_device.is_none()) {
          auto d = dl_device.cast<std::pair<int, int>>();
          DLDevice mine = to_dl(t.device());
          KIRZL_CHECK_CODE(d.first == mine.device_type && d.second == mine.device_id, ErrorCode::Unsupported,
                           "__dlpack__: exporting to another device is not supported");
        }
        if (!copy.is_none() && copy.cast<bool>()) return to_dlpack(t.clone(), max_version);
        return to_dlpack(t, max_version);
      },
      py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
      py::arg("copy") = py::none(), "A DLPack capsule sharing this tensor's memory (zero-copy).");
  cls.def("__dlpack_device__", [](const Tensor& t) {
    DLDevice d = to_dl(t.device());
    return py::make_tuple(d.device_type, d.device_id);
  });
  m.def("from_dlpack", &from_dlpack, py::arg("obj"),
        "A kirzl tensor sharing the memory of `obj` (torch.Tensor, CuPy/NumPy array, JAX array, or a DLPack capsule). "
        "The producer's memory stays alive until the kirzl tensor (and its views) die. Read-only producers are copied.");
}

}  // namespace kirzl::python
