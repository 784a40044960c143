// DLPack in and out: Tensor.__dlpack__ / __dlpack_device__ and kirzl.from_dlpack. Both directions
// share memory (no copy); the consumer keeps the producer's memory alive until it is done.
//
// Both directions order CUDA work through the DLPack `stream` argument (Note [dlpack streams]).
#include "dlpack.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "common.h"

namespace kirzl::python {

namespace {

// Note [dlpack streams]
// The consumer of a DLPack exchange calls producer.__dlpack__(stream=S), S naming the stream on
// which the consumer will use the data, and the producer makes its pending work on the data
// visible on S before it returns (Python array API standard, __dlpack__). For CUDA: None means
// "assume the legacy default stream", 1 the legacy default stream, 2 the per-thread default
// stream, an integer > 2 a cudaStream_t, and -1 asks for no synchronisation; 0 is ambiguous and
// disallowed. The producer must not block the host to do it when a device-side wait will do.
//
// kirzl as producer (Tensor.__dlpack__): kirzl's CUDA ops are asynchronous on kirzl's current
// stream of the tensor's device (cuda::Stream::current), so a consumer stream that is not that
// stream is made to wait for it (cuda::Stream::wait(Stream): an event recorded on kirzl's stream,
// cudaStreamWaitEvent on the consumer's; the host does not block). CPU work is synchronous: a CPU
// tensor needs no ordering. The standard lets a consumer pass only None for CPU data; kirzl, like
// PyTorch, also accepts a valid integer there and ignores it. Invalid values are refused on every
// device: a non-integer is a TypeError, 0 or < -1 an InvalidArgumentError (a ValueError).
//
// kirzl as consumer (kirzl.from_dlpack): for a CUDA producer (kDLCUDA, kDLCUDAManaged) kirzl
// passes its own current stream of the producer's device, as the integer the standard asks for
// (1 for the legacy default stream, which is kirzl's unless a StreamGuard is active), so that
// every kirzl op on the imported tensor runs after the producer's pending writes. Other producers
// get no `stream` argument. A producer without __dlpack_device__ gets none either, so it assumes
// the legacy default stream; when its data turns out to be on CUDA and kirzl's current stream is
// another, kirzl's stream is made to wait for the legacy default stream. A bare capsule carries no
// stream: the caller who made it is responsible for its ordering.
//
// Letting go. A consumer uses kirzl's memory on its stream until it calls the DLPack deleter,
// which it may do as soon as its own tensor dies on the host, with its kernels still queued. The
// deleter therefore declares that use to kirzl's caching allocator (Storage::record_stream on the
// consumer's stream, an event; the host never waits) before it drops the tensor, so the block is
// reused only after that work. The per-thread default stream (2) names the stream of whichever
// thread runs the deleter, so its use is fenced on the legacy default stream, which waits for
// every blocking stream's earlier work. With -1 the consumer took the ordering on itself.
// Importing a read-only capsule copies it (kirzl has no read-only tensors): the copy is queued on
// kirzl's stream, so the producer's memory is given back only after kirzl's stream has run it.
//
// Devices and captures. A producer such as PyTorch exports only from its current device, so
// from_dlpack makes the producer's device current around __dlpack__ (and restores it). Neither
// direction works inside a CUDA graph capture (the event and wait would cross the capture's
// boundary): both refuse with Error{Unsupported} while kirzl's current stream of the device is
// being captured.

// The `stream` argument of __dlpack__, validated.
struct DlpackStream {
  enum class Kind { Unspecified, NoSync, LegacyDefault, PerThreadDefault, Handle };
  Kind kind = Kind::Unspecified;
  uintptr_t handle = 0;  // the cudaStream_t for Kind::Handle
};

DlpackStream parse_stream(const py::object& stream) {
  DlpackStream out;
  if (stream.is_none()) return out;
  // int and int-like objects (numpy integers) are streams; bool is an int but surely a mistake.
  if (PyBool_Check(stream.ptr()) || !PyIndex_Check(stream.ptr())) {
    throw py::type_error("kirzl: __dlpack__: stream must be an int or None, got " +
                         std::string(py::str(py::type::of(stream).attr("__name__"))));
  }
  py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(stream.ptr()));
  if (!value) throw py::error_already_set();
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow > 0) {  // a stream pointer above INT64_MAX: valid if it fits a pointer
    unsigned long long u = PyLong_AsUnsignedLongLong(value.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
    } else if (u <= UINTPTR_MAX) {
      out.kind = DlpackStream::Kind::Handle;
      out.handle = static_cast<uintptr_t>(u);
      return out;
    }
  }
  KIRZL_CHECK(overflow == 0 && v != 0 && v >= -1, "__dlpack__: stream=", std::string(py::str(value)),
              " is not a DLPack stream: pass None (legacy default stream assumed), -1 (no synchronisation), 1 "
              "(legacy default stream), 2 (per-thread default stream) or a cudaStream_t as an integer > 2; 0 is "
              "disallowed for CUDA");
  if (v == -1) out.kind = DlpackStream::Kind::NoSync;
  else if (v == 1) out.kind = DlpackStream::Kind::LegacyDefault;
  else if (v == 2) out.kind = DlpackStream::Kind::PerThreadDefault;
  else {
    out.kind = DlpackStream::Kind::Handle;
    out.handle = static_cast<uintptr_t>(v);
  }
  return out;
}

// Refuses a CUDA exchange while kirzl's current stream of `device` is being captured.
void check_not_capturing(int device, const char* what) {
  KIRZL_CHECK_CODE(!cuda::is_capturing(device), ErrorCode::Unsupported, what, ": not during a CUDA graph capture on cuda:",
                   device, " (the exchange's event and wait would cross the capture); exchange before or after it");
}

// Producer side: makes the consumer's stream wait for kirzl's pending work on `t`'s device, and
// returns the stream on which the consumer's use of the memory is fenced when it lets go (an
// empty Stream: nothing to fence). Note [dlpack streams].
cuda::Stream order_for_consumer(const Tensor& t, const DlpackStream& s) {
  if (!t.device().is_cuda() || s.kind == DlpackStream::Kind::NoSync) return {};
  int dev = t.device().index();
  check_not_capturing(dev, "__dlpack__");
  // Non-owning handles, made twice: a Stream is not copyable.
  auto consumer = [&] {
    switch (s.kind) {
      case DlpackStream::Kind::Handle: return cuda::Stream::from_native(dev, reinterpret_cast<void*>(s.handle));
      case DlpackStream::Kind::PerThreadDefault: return cuda::Stream::per_thread_default(dev);
      default: return cuda::Stream::legacy_default(dev);  // None: the standard says assume the legacy one
    }
  };
  consumer().wait(cuda::Stream::current(dev));
  // The deleter may run on another thread, for which 2 names another stream: fenced on the legacy one.
  return s.kind == DlpackStream::Kind::PerThreadDefault ? cuda::Stream::legacy_default(dev) : consumer();
}

// Consumer side: kirzl's current stream of CUDA `device` as a DLPack stream integer. Without a
// usable CUDA device kirzl can have issued no work and no StreamGuard can be active: its current
// stream is then the legacy default stream by definition (1).
py::int_ consumer_stream(int device) {
  if (!cuda::is_available()) return py::int_(1);
  cuda::Stream s = cuda::Stream::current(device);
  if (s.is_legacy_default()) return py::int_(1);
  if (s.is_per_thread_default()) return py::int_(2);
  return py::int_(static_cast<size_t>(reinterpret_cast<uintptr_t>(s.native_handle())));
}

// Makes CUDA device `device` current for a scope and restores the previous one.
class CurrentDevice {
 public:
  explicit CurrentDevice(int device) : previous_(cuda::current_device()) {
    if (device != previous_) cuda::set_device(device);
  }
  ~CurrentDevice() {
    try {
      if (cuda::current_device() != previous_) cuda::set_device(previous_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kirzl: from_dlpack: could not restore the current CUDA device (%s)\n", e.what());
    }
  }
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_;
};

bool is_cuda_device_type(int device_type) { return device_type == kDLCUDA || device_type == kDLCUDAManaged; }

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
  cuda::Stream consumer_fence;  // where the consumer's use is fenced at release (Note [dlpack streams])
  std::vector<int64_t> shape, strides;
  Managed managed{};

  // The DLPack deleter: may run on any thread, with or without the GIL; never throws.
  ~Export() {
    if (!consumer_fence.defined()) return;
    try {
      tensor.storage().record_stream(consumer_fence);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kirzl: DLPack release: the consumer's stream could not be fenced (%s); the memory is "
                   "kept for the process's life instead\n", e.what());
      new Tensor(std::move(tensor));  // leaked on purpose: never reused under the consumer's feet
    }
  }
};

template <typename Managed>
Managed* make_managed(const Tensor& t, cuda::Stream consumer_fence) {
  auto* ctx = new Export<Managed>();
  ctx->tensor = t;
  ctx->consumer_fence = std::move(consumer_fence);
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

// A capsule may be destroyed while a Python exception is pending (during unwinding), and its
// deleter may run Python code (dropping a NumPy array that a kirzl tensor wraps): the pending
// exception is set aside meanwhile, as NumPy's own capsule destructors do.
class PendingErrorSetAside {
 public:
  PendingErrorSetAside() { PyErr_Fetch(&type_, &value_, &trace_); }
  ~PendingErrorSetAside() { PyErr_Restore(type_, value_, trace_); }
  PendingErrorSetAside(const PendingErrorSetAside&) = delete;
  PendingErrorSetAside& operator=(const PendingErrorSetAside&) = delete;

 private:
  PyObject *type_ = nullptr, *value_ = nullptr, *trace_ = nullptr;
};

void capsule_destructor_v0(PyObject* cap) {
  PendingErrorSetAside pending;
  if (PyCapsule_IsValid(cap, "dltensor")) {  // never consumed: we still own it
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    if (m && m->deleter) m->deleter(m);
  }
}

void capsule_destructor_v1(PyObject* cap) {
  PendingErrorSetAside pending;
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, "dltensor_versioned"));
    if (m && m->deleter) m->deleter(m);
  }
}

py::object to_dlpack(const Tensor& t, const py::object& max_version, cuda::Stream consumer_fence) {
  bool versioned = false;
  if (!max_version.is_none()) versioned = py::cast<py::tuple>(max_version)[0].cast<int>() >= 1;
  if (versioned) {
    auto* m = make_managed<DLManagedTensorVersioned>(t, std::move(consumer_fence));
    m->version = {1, 0};
    m->flags = 0;
    PyObject* cap = PyCapsule_New(m, "dltensor_versioned", capsule_destructor_v1);
    if (!cap) {
      m->deleter(m);
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::object>(cap);
  }
  auto* m = make_managed<DLManagedTensor>(t, std::move(consumer_fence));
  PyObject* cap = PyCapsule_New(m, "dltensor", capsule_destructor_v0);
  if (!cap) {
    m->deleter(m);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(cap);
}

// The kirzl device of a DLPack tensor's memory; throws for memory kirzl cannot take.
Device device_of(const DLTensor& dl) {
  if (dl.device.device_type == kDLCPU || dl.device.device_type == kDLCUDAHost) return Device::cpu();
  if (dl.device.device_type == kDLCUDA || dl.device.device_type == kDLCUDAManaged) return Device::cuda(dl.device.device_id);
  KIRZL_FAIL(ErrorCode::Unsupported, "from_dlpack: DLPack device type ", dl.device.device_type,
             " is not supported (kirzl takes CPU and CUDA memory)");
}

// What kirzl makes of a DLPack tensor.
struct Importable {
  DType dtype;
  Device device;
};

// Everything that can refuse a DLPack tensor, checked before its capsule is consumed: a capsule
// that is refused stays unused, so its own destructor gives the producer's memory back.
Importable check_importable(const DLTensor& dl) {
  const Importable in{from_dl(dl.dtype), device_of(dl)};
  KIRZL_CHECK(dl.ndim >= 0 && dl.ndim <= kMaxDims, "from_dlpack: ", dl.ndim, " dimensions; kirzl supports 0 to ", kMaxDims);
  for (int32_t d = 0; d < dl.ndim; ++d) {
    KIRZL_CHECK(dl.shape[d] >= 0, "from_dlpack: negative size ", dl.shape[d], " in dimension ", d);
    KIRZL_CHECK_CODE(!dl.strides || dl.strides[d] >= 0, ErrorCode::Unsupported,
                     "from_dlpack: negative strides are not supported");
  }
  if (in.device.is_cuda()) check_not_capturing(in.device.index(), "from_dlpack");
  return in;
}

// Wraps a consumed DLTensor, as check_importable found it, as a kirzl tensor; `release` gives the
// producer's memory back, exactly once, also when the wrapping fails.
Tensor wrap(const DLTensor& dl, const Importable& in, std::function<void()> release, bool read_only) {
  auto once = std::make_shared<std::function<void()>>(std::move(release));
  auto release_once = [once] {
    if (!*once) return;
    std::function<void()> f = std::move(*once);
    *once = nullptr;
    f();
  };
  try {
    const Device dev = in.device;
    std::vector<int64_t> shape(dl.shape, dl.shape + dl.ndim), strides(dl.ndim);
    if (dl.strides) std::copy(dl.strides, dl.strides + dl.ndim, strides.begin());
    else strides = contiguous_strides(Shape(shape)).vec();
    auto* data = static_cast<char*>(dl.data) + dl.byte_offset;
    Tensor t = kirzl::from_blob(data, Shape(shape), Shape(strides), in.dtype, dev, [release_once](void*) { release_once(); });
    if (!read_only) return t;
    // kirzl has no read-only tensors: a copy, so writes cannot reach the producer. On CUDA the copy
    // is queued: the producer's memory goes back once kirzl's stream has run it (Note [dlpack streams]).
    Tensor copy = t.clone();
    if (dev.is_cuda()) {
      py::gil_scoped_release no_gil;
      cuda::Stream::current(dev.index()).synchronize();
    }
    return copy;
  } catch (...) {
    release_once();
    throw;
  }
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
    const Importable in = check_importable(m->dl_tensor);
    PyCapsule_SetName(c, "used_dltensor_versioned");
    auto rel = releaser([m] { if (m->deleter) m->deleter(m); }, producer);
    return wrap(m->dl_tensor, in, rel, (m->flags & kDLFlagBitmaskReadOnly) != 0);
  }
  if (PyCapsule_IsValid(c, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
    const Importable in = check_importable(m->dl_tensor);
    PyCapsule_SetName(c, "used_dltensor");
    auto rel = releaser([m] { if (m->deleter) m->deleter(m); }, producer);
    return wrap(m->dl_tensor, in, rel, false);
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
  // Note [dlpack streams]: a CUDA producer orders its pending work before kirzl's current stream.
  py::dict kwargs;
  bool known_device = py::hasattr(obj, "__dlpack_device__");
  std::optional<CurrentDevice> on_producer_device;  // Note [dlpack streams]: "Devices and captures"
  if (known_device) {
    py::tuple d = obj.attr("__dlpack_device__")();
    KIRZL_CHECK(d.size() == 2, "from_dlpack: __dlpack_device__ returned ", std::string(py::repr(d)),
                "; expected a (device_type, device_id) pair");
    int type = d[0].cast<int>(), id = d[1].cast<int>();
    if (is_cuda_device_type(type)) {
      kwargs["stream"] = consumer_stream(id);
      if (cuda::is_available() && id >= 0 && id < cuda::device_count()) on_producer_device.emplace(id);
    }
  }
  py::object cap;
  try {
    cap = obj.attr("__dlpack__")(py::arg("max_version") = py::make_tuple(1, 0), **kwargs);
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    cap = obj.attr("__dlpack__")(**kwargs);  // a producer from before DLPack 1.0
  }
  Tensor t = from_capsule(cap, obj);
  if (!known_device && t.device().is_cuda() && cuda::is_available()) {
    // No stream was passed, so the producer ordered its work before the legacy default stream.
    cuda::Stream::current(t.device().index()).wait(cuda::Stream::legacy_default(t.device().index()));
  }
  return t;
}

void init_dlpack(py::module_& m) {
  auto cls = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));
  cls.def(
      "__dlpack__",
      [](const Tensor& t, const py::object& stream, const py::object& max_version, const py::object& dl_device,
         const py::object& copy) {
        DlpackStream s = parse_stream(stream);
        if (!dl_device.is_none()) {
          auto d = dl_device.cast<std::pair<int, int>>();
          DLDevice mine = to_dl(t.device());
          KIRZL_CHECK_CODE(d.first == mine.device_type && d.second == mine.device_id, ErrorCode::Unsupported,
                           "__dlpack__: exporting to another device is not supported");
        }
        Tensor out = (!copy.is_none() && copy.cast<bool>()) ? t.clone() : t;
        cuda::Stream fence = order_for_consumer(out, s);  // after the clone, which is queued on kirzl's stream too
        return to_dlpack(out, max_version, std::move(fence));
      },
      py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
      py::arg("copy") = py::none(),
      "A DLPack capsule sharing this tensor's memory (zero-copy; a copy with copy=True).\n\n"
      "stream: where the consumer will use a CUDA tensor. None (the legacy default stream is assumed), 1 (legacy "
      "default stream), 2 (per-thread default stream) or a cudaStream_t as an int > 2: that stream is made to wait, "
      "on the device, for kirzl's pending work on the tensor (the host does not block). -1: no synchronisation. 0 "
      "and other negative values raise InvalidArgumentError (a ValueError), a non-int TypeError. A CPU tensor needs "
      "no synchronisation and ignores a valid stream.");
  cls.def("__dlpack_device__", [](const Tensor& t) {
    DLDevice d = to_dl(t.device());
    return py::make_tuple(d.device_type, d.device_id);
  });
  m.def("from_dlpack", &from_dlpack, py::arg("obj"),
        "A kirzl tensor sharing the memory of `obj` (torch.Tensor, CuPy/NumPy array, JAX array, or a DLPack capsule). "
        "The producer's memory stays alive until the kirzl tensor (and its views) die. Read-only producers are copied. "
        "A CUDA producer is called as obj.__dlpack__(stream=S) with S kirzl's current stream of its device (1, the "
        "legacy default stream, unless a C++ StreamGuard is active), so its pending writes are ordered before kirzl's "
        "ops; other producers get no stream. A bare capsule carries no ordering: synchronise before making it.");
}

}  // namespace kirzl::python
