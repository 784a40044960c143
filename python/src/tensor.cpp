// kirzl.Tensor: metadata, views, NumPy buffer protocol in and out, indexing, operators, factories.
//
// NumPy interop (Note [numpy sharing]):
//  - out: Tensor implements the buffer protocol (strides in bytes), so np.asarray(t) and
//    t.numpy() share a CPU tensor's memory (writes through either are seen by the other). A CUDA
//    tensor is copied to the host by numpy(). bf16 has no NumPy dtype: the buffer protocol and
//    numpy() raise kirzl.UnsupportedError (convert with t.to(kirzl.f32) first).
//  - in: kirzl.from_numpy(a) / kirzl.tensor(a) share a's memory (the tensor keeps `a` alive) when
//    a's dtype is one of kirzl's (float32/64, float16, int32/64, uint8/16; bool is shared as u8),
//    its byte order is native, its strides are non-negative multiples of the item size, and it is
//    writeable. Otherwise the data is copied: int8/int16 -> i32, uint32/uint64 -> i64,
//    longdouble -> f64, negative strides and read-only arrays (kirzl could not respect the flag).
#include "common.h"

#include <cstring>
#include <memory>
#include <thread>

namespace kirzl::python {

namespace {

// kirzl.GeneratorScope: a context manager around kirzl::GeneratorScope (Note [per-thread default
// generator]). The generator is a Python object (made here for a seed, or the one given), so that
// `with kirzl.GeneratorScope(0) as g:` leaves `g` valid after the block.
struct PyGeneratorScope {
  py::object generator;
  std::unique_ptr<GeneratorScope> scope;  // while entered
  std::thread::id thread;
};

DType dtype_from_numpy_name(const std::string& n) {
  if (n == "float32") return DType::f32;
  if (n == "float64") return DType::f64;
  if (n == "float16") return DType::f16;
  if (n == "bfloat16") return DType::bf16;
  if (n == "int32") return DType::i32;
  if (n == "int64") return DType::i64;
  if (n == "uint8" || n == "bool") return DType::u8;
  if (n == "uint16") return DType::u16;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "kirzl has no dtype for '", n,
             "' (supported: f32, f64, bf16, f16, i32, i64, u8, u16)");
}

const char* buffer_format(DType t) {
  switch (t) {
    case DType::f32: return "f";
    case DType::f64: return "d";
    case DType::f16: return "e";
    case DType::i32: return "i";
    case DType::i64: return "q";
    case DType::u8: return "B";
    case DType::u16: return "H";
    case DType::bf16: break;
  }
  return nullptr;
}

// The dtype kirzl shares a NumPy array as, or nullopt when it must be converted.
std::optional<DType> shareable_dtype(const py::dtype& dt) {
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 8) return DType::f64;
  if (kind == 'f' && size == 2) return DType::f16;
  if (kind == 'i' && size == 4) return DType::i32;
  if (kind == 'i' && size == 8) return DType::i64;
  if (kind == 'u' && size == 1) return DType::u8;
  if (kind == 'b' && size == 1) return DType::u8;
  if (kind == 'u' && size == 2) return DType::u16;
  return std::nullopt;
}

const char* conversion_target(const py::dtype& dt) {
  const char kind = dt.kind();
  if (kind == 'i') return "int32";
  if (kind == 'u') return "int64";
  if (kind == 'f') return "float64";
  return nullptr;
}

Tensor index_tensor(const Tensor& t, const py::handle& key_in);

}  // namespace

DType dtype_from_py(const py::handle& h) {
  if (py::isinstance<DType>(h)) return h.cast<DType>();
  if (py::isinstance<py::str>(h)) {
    std::string s = h.cast<std::string>();
    try {
      return dtype_from_name(s);
    } catch (const Error&) {
      return dtype_from_numpy_name(s);
    }
  }
  py::object np_dtype = py::module_::import("numpy").attr("dtype")(h);
  return dtype_from_numpy_name(np_dtype.attr("name").cast<std::string>());
}

Device device_from_py(const py::handle& h) {
  if (py::isinstance<Device>(h)) return h.cast<Device>();
  if (py::isinstance<py::str>(h)) return Device(h.cast<std::string>());
  KIRZL_FAIL(ErrorCode::InvalidArgument, "expected a kirzl.Device or a string like 'cpu' or 'cuda:0', got ",
             std::string(py::str(py::type::of(h).attr("__name__"))));
}

Shape shape_from_py(const py::handle& h) {
  if (py::isinstance<py::int_>(h)) return Shape{h.cast<int64_t>()};
  std::vector<int64_t> dims;
  for (auto v : py::iter(h)) dims.push_back(v.cast<int64_t>());
  return Shape(dims);
}

py::tuple shape_to_py(const Shape& s) {
  py::tuple out(s.size());
  for (int64_t i = 0; i < s.size(); ++i) out[i] = py::int_(s[i]);
  return out;
}

Tensor from_numpy(py::array arr, bool copy) {
  py::dtype dt = arr.dtype();
  auto shared = shareable_dtype(dt);
  const bool native = dt.attr("isnative").cast<bool>();
  if (!shared || !native) {
    const char* target = shared ? nullptr : conversion_target(dt);
    if (!shared && !target)
      KIRZL_FAIL(ErrorCode::InvalidArgument, "from_numpy: NumPy dtype '", std::string(py::str(dt)),
                 "' has no kirzl dtype (supported: float32/64, float16, int32/64, uint8/16, bool)");
    py::object converted = shared ? arr.attr("astype")(dt.attr("newbyteorder")("=")) : arr.attr("astype")(target);
    return from_numpy(converted.cast<py::array>(), false);
  }
  const auto itemsize = static_cast<py::ssize_t>(dt.itemsize());
  bool layout_ok = true;
  for (py::ssize_t d = 0; d < arr.ndim(); ++d)
    if (arr.shape(d) > 1 && (arr.strides(d) < 0 || arr.strides(d) % itemsize != 0)) layout_ok = false;
  if (arr.ndim() > kMaxDims)
    KIRZL_FAIL(ErrorCode::InvalidArgument, "from_numpy: array has ", arr.ndim(), " dimensions; kirzl supports up to ",
               kMaxDims);
  const bool writeable = arr.writeable();
  if (copy || !layout_ok || !writeable) {
    py::array c = py::module_::import("numpy").attr("array")(arr, py::arg("order") = "C", py::arg("copy") = true);
    return from_numpy(c, false);
  }
  std::vector<int64_t> shape(arr.ndim()), strides(arr.ndim());
  for (py::ssize_t d = 0; d < arr.ndim(); ++d) {
    shape[d] = arr.shape(d);
    strides[d] = arr.shape(d) > 1 ? arr.strides(d) / itemsize : 1;
  }
  auto keep = std::make_shared<GilObject>(arr);
  void* data = arr.mutable_data();
  return kirzl::from_blob(data, Shape(shape), Shape(strides), *shared, Device::cpu(), [keep](void*) mutable { keep.reset(); });
}

py::object tensor_to_numpy(const Tensor& t) {
  KIRZL_CHECK_CODE(t.dtype() != DType::bf16, ErrorCode::Unsupported, "Tensor.numpy: NumPy has no bf16 dtype (",
                   t.describe(), "); convert first with t.to(kirzl.f32)");
  Tensor c = t.device().is_cpu() ? t : t.to(Device::cpu());
  return py::module_::import("numpy").attr("asarray")(py::cast(c));
}

Tensor to_tensor(const py::handle& obj) {
  if (py::isinstance<Tensor>(obj)) return obj.cast<Tensor>();
  if (py::isinstance<py::array>(obj)) return from_numpy(py::reinterpret_borrow<py::array>(obj), false);
  if (py::hasattr(obj, "__dlpack__")) return from_dlpack(py::reinterpret_borrow<py::object>(obj));
  if (py::isinstance<py::bool_>(obj)) return scalar_tensor(obj.cast<bool>() ? 1 : 0, {.dtype = DType::u8});
  if (py::isinstance<py::int_>(obj)) return scalar_tensor(obj.cast<double>(), {.dtype = DType::i64});
  if (py::isinstance<py::float_>(obj)) return scalar_tensor(obj.cast<double>(), {.dtype = DType::f32});
  // Nested lists and other buffers: through NumPy (Python floats become f32, ints i64).
  py::object np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (kind == 'f' && !py::isinstance<py::buffer>(obj)) a = a.attr("astype")("float32");
  else if ((kind == 'i' || kind == 'u') && !py::isinstance<py::buffer>(obj)) a = a.attr("astype")("int64");
  else if (kind == 'O' || kind == 'U' || kind == 'S')
    KIRZL_FAIL(ErrorCode::InvalidArgument, "cannot make a kirzl tensor from ",
               std::string(py::str(py::type::of(obj).attr("__name__"))));
  return from_numpy(a, false);
}

Tensor to_tensor_inplace(const py::handle& obj, const char* op) {
  if (py::isinstance<Tensor>(obj)) return obj.cast<Tensor>();
  if (py::isinstance<py::array>(obj)) {
    auto a = py::reinterpret_borrow<py::array>(obj);
    KIRZL_CHECK(a.writeable(), op, ": the NumPy array is read-only; an in-place collective needs a writeable array");
    KIRZL_CHECK(a.attr("flags").attr("c_contiguous").cast<bool>(), op,
                ": the NumPy array is not C-contiguous; pass np.ascontiguousarray(a) and use the result");
    auto dt = shareable_dtype(a.dtype());
    KIRZL_CHECK(dt.has_value() && a.dtype().attr("isnative").cast<bool>(), op, ": NumPy dtype '",
                std::string(py::str(a.dtype())), "' cannot be reduced in place by kirzl");
    return from_numpy(a, false);
  }
  if (py::hasattr(obj, "__dlpack__")) return from_dlpack(py::reinterpret_borrow<py::object>(obj));
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": expected a kirzl.Tensor, a NumPy array or an object with __dlpack__, got ",
             std::string(py::str(py::type::of(obj).attr("__name__"))));
}

namespace {

int64_t wrap_index(int64_t i, int64_t n, int64_t dim) {
  if (i < -n || i >= n)
    throw py::index_error("index " + std::to_string(i) + " is out of range for dimension " + std::to_string(dim) +
                          " with extent " + std::to_string(n));
  return i < 0 ? i + n : i;
}

Tensor index_tensor(const Tensor& t, const py::handle& key_in) {
  py::tuple key = py::isinstance<py::tuple>(key_in) ? py::reinterpret_borrow<py::tuple>(key_in) : py::make_tuple(key_in);
  int64_t consuming = 0;
  bool has_ellipsis = false;
  for (auto k : key) {
    if (k.is(py::ellipsis())) {
      if (has_ellipsis) throw py::index_error("an index can only have a single ellipsis ('...')");
      has_ellipsis = true;
    } else if (!k.is_none()) {
      ++consuming;
    }
  }
  if (consuming > t.dim())
    throw py::index_error("too many indices for a tensor of dimension " + std::to_string(t.dim()));
  Tensor r = t;
  int64_t d = 0;
  for (auto k : key) {
    if (k.is(py::ellipsis())) {
      d += t.dim() - consuming;
    } else if (k.is_none()) {
      r = r.unsqueeze(d);
      ++d;
    } else if (py::isinstance<py::slice>(k)) {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(k.ptr(), &start, &stop, &step) < 0) throw py::error_already_set();
      if (step <= 0) throw py::value_error("kirzl tensors support only positive slice steps");
      const Py_ssize_t n = r.size(d);
      PySlice_AdjustIndices(n, &start, &stop, step);
      r = r.slice(d, start, std::max(start, stop), step);
      ++d;
    } else if (py::isinstance<py::int_>(k) || py::hasattr(k, "__index__")) {
      int64_t i = py::int_(py::reinterpret_borrow<py::object>(k)).cast<int64_t>();
      r = r.select(d, wrap_index(i, r.size(d), d));
    } else {
      KIRZL_FAIL(ErrorCode::Unsupported, "Tensor indexing: only integers, slices, None and ... are supported, got ",
                 std::string(py::str(py::type::of(k).attr("__name__"))),
                 " (use kirzl.embedding or gather on the NumPy side for advanced indexing)");
    }
  }
  return r;
}

template <typename TT, typename TS>
py::object binop(const Tensor& a, const py::handle& b, TT tt, TS ts) {
  if (py::isinstance<Tensor>(b)) return py::cast(tt(a, b.cast<const Tensor&>()));
  if (py::isinstance<py::float_>(b) || (py::isinstance<py::int_>(b) && !py::isinstance<py::bool_>(b)))
    return py::cast(ts(a, b.cast<double>()));
  if (py::isinstance<py::array>(b) || py::hasattr(b, "__dlpack__") || py::isinstance<py::list>(b))
    return py::cast(tt(a, to_tensor(b)));
  return py::reinterpret_borrow<py::object>(py::handle(Py_NotImplemented));
}

TensorOptions options_from(const py::object& dtype, const py::object& device, bool requires_grad,
                           DType default_dtype = DType::f32) {
  TensorOptions o;
  o.dtype = dtype.is_none() ? default_dtype : dtype_from_py(dtype);
  o.device = device.is_none() ? Device::cpu() : device_from_py(device);
  o.requires_grad = requires_grad;
  return o;
}

Shape shape_from_args(const py::args& args) {
  if (args.size() == 1 && !py::isinstance<py::int_>(args[0])) return shape_from_py(args[0]);
  std::vector<int64_t> dims;
  for (auto a : args) dims.push_back(a.cast<int64_t>());
  return Shape(dims);
}

}  // namespace

void init_tensor(py::module_& m) {
  py::enum_<DType>(m, "DType", "Element type of a tensor. Also exported as kirzl.f32, kirzl.float32, ...")
      .value("f32", DType::f32)
      .value("f64", DType::f64)
      .value("bf16", DType::bf16)
      .value("f16", DType::f16)
      .value("i32", DType::i32)
      .value("i64", DType::i64)
      .value("u8", DType::u8)
      .value("u16", DType::u16)
      .def_property_readonly("itemsize", [](DType t) { return dtype_size(t); }, "Bytes per element.")
      .def_property_readonly("is_floating_point", [](DType t) { return is_floating(t); });
  for (auto [name, t] : {std::pair{"f32", DType::f32}, {"f64", DType::f64}, {"bf16", DType::bf16}, {"f16", DType::f16},
                         {"i32", DType::i32}, {"i64", DType::i64}, {"u8", DType::u8}, {"u16", DType::u16},
                         {"float32", DType::f32}, {"float64", DType::f64}, {"bfloat16", DType::bf16},
                         {"float16", DType::f16}, {"int32", DType::i32}, {"int64", DType::i64},
                         {"uint8", DType::u8}, {"uint16", DType::u16}})
    m.attr(name) = t;
  m.def("dtype_size", [](const py::object& t) { return dtype_size(dtype_from_py(t)); }, "Bytes per element.");
  m.def("promote_types", [](const py::object& a, const py::object& b) { return promote_types(dtype_from_py(a), dtype_from_py(b)); },
        "The dtype of a binary op on dtypes a and b.");

  py::enum_<DeviceType>(m, "DeviceType").value("CPU", DeviceType::CPU).value("CUDA", DeviceType::CUDA);
  py::class_<Device>(m, "Device", "A device: the CPU or CUDA device n.")
      .def(py::init([](const std::string& spec) { return Device(spec); }), py::arg("spec"),
           "Parses 'cpu', 'cuda' or 'cuda:N'.")
      .def(py::init<DeviceType, int>(), py::arg("type"), py::arg("index") = 0)
      .def_property_readonly("type", &Device::type)
      .def_property_readonly("index", &Device::index)
      .def_property_readonly("is_cpu", &Device::is_cpu)
      .def_property_readonly("is_cuda", &Device::is_cuda)
      .def("__str__", &Device::str)
      .def("__repr__", [](const Device& d) { return "kirzl.Device('" + d.str() + "')"; })
      .def("__eq__", [](const Device& a, const py::object& b) {
        try {
          return a == device_from_py(b);
        } catch (const std::exception&) {
          return false;
        }
      })
      .def("__hash__", [](const Device& d) { return std::hash<std::string>()(d.str()); });
  py::implicitly_convertible<py::str, Device>();

  py::class_<Generator>(m, "Generator", "A seeded counter-based (Philox) random generator. Thread-safe.")
      .def(py::init<uint64_t>(), py::arg("seed") = 0)
      .def("manual_seed", &Generator::manual_seed, py::arg("seed"), "Re-seeds this generator (and resets its stream).")
      .def_property_readonly("seed", &Generator::seed)
      .def_property("offset", &Generator::offset, &Generator::set_offset);
  m.def("default_generator", &default_generator, py::return_value_policy::reference,
        "The calling thread's default generator: the innermost GeneratorScope's, else the process-wide one.");
  m.def("manual_seed", &manual_seed, py::arg("seed"), "Re-seeds the calling thread's default generator.");
  py::class_<PyGeneratorScope>(m, "GeneratorScope", R"doc(
Makes a generator the calling thread's default (used by rand/randn/dropout/initialisation and
saved by checkpoints) within a `with` block, so that ranks run as threads
(kirzl.comm.make_in_process_group) draw as separate processes would:

    def rank_main(r, comm):
        with kirzl.GeneratorScope(0):   # a fresh generator seeded 0, as in a new process
            ...

GeneratorScope(seed) makes a new Generator; GeneratorScope(generator) installs the one given.
`as` binds the installed Generator. Blocks nest; other threads are unaffected.
)doc")
      .def(py::init([](uint64_t seed) {
             return PyGeneratorScope{py::cast(new Generator(seed), py::return_value_policy::take_ownership), nullptr, {}};
           }),
           py::arg("seed") = 0)
      .def(py::init([](const py::handle& gen) {
             KIRZL_CHECK(py::isinstance<Generator>(gen), "GeneratorScope: expected a kirzl.Generator or a seed, got ",
                         std::string(py::str(py::type::of(gen))));
             return PyGeneratorScope{py::reinterpret_borrow<py::object>(gen), nullptr, {}};
           }),
           py::arg("generator"))
      .def("__enter__", [](PyGeneratorScope& s) {
             KIRZL_CHECK(!s.scope, "GeneratorScope: already entered (a scope is entered once)");
             s.scope = std::make_unique<GeneratorScope>(s.generator.cast<Generator&>());
             s.thread = std::this_thread::get_id();
             return s.generator;
           })
      .def("__exit__", [](PyGeneratorScope& s, const py::args&) {
             KIRZL_CHECK(s.scope, "GeneratorScope: __exit__ without __enter__");
             KIRZL_CHECK(s.thread == std::this_thread::get_id(),
                         "GeneratorScope: exited on another thread than the one that entered it");
             s.scope.reset();
           });
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads used by CPU kernels.");
  m.def("get_num_threads", &get_num_threads, "Threads used by CPU kernels.");

  py::class_<Tensor> t(m, "Tensor", py::buffer_protocol(), py::is_final(), R"doc(
An n-dimensional strided view of typed memory with autograd state.

A Tensor is a handle: assigning it, or getting it back from C++ (e.g. model.parameters()),
shares the same data and autograd state. Views (slicing, reshape, transpose) share storage.
np.asarray(t) / t.numpy() share a CPU tensor's memory (buffer protocol); kirzl.tensor(ndarray)
shares the array's memory where dtype and layout allow (see kirzl.from_numpy).
)doc");
  t.def(py::init([](const py::object& data) { return to_tensor(data); }), py::arg("data"),
        "Same as kirzl.tensor(data): shares NumPy/DLPack memory when possible.");
  t.def_buffer([](Tensor& self) -> py::buffer_info {
    KIRZL_CHECK_CODE(self.device().is_cpu(), ErrorCode::Unsupported, "Tensor.__buffer__: ", self.describe(),
                     " is not on the CPU; use t.numpy() (copies to the host) or DLPack");
    const char* fmt = buffer_format(self.dtype());
    KIRZL_CHECK_CODE(fmt != nullptr, ErrorCode::Unsupported, "Tensor.numpy: NumPy has no bf16 dtype (", self.describe(),
                     "); convert first with t.to(kirzl.f32)");
    const auto es = static_cast<py::ssize_t>(self.element_size());
    std::vector<py::ssize_t> shape(self.dim()), strides(self.dim());
    for (int64_t d = 0; d < self.dim(); ++d) {
      shape[d] = self.shape()[d];
      strides[d] = self.strides()[d] * es;
    }
    return py::buffer_info(self.data_ptr(), es, fmt, self.dim(), shape, strides, false);
  });

  // ---- metadata ----
  t.def_property_readonly("shape", [](const Tensor& s) { return shape_to_py(s.shape()); }, "Extents as a tuple.")
      .def_property_readonly("strides", [](const Tensor& s) { return shape_to_py(s.strides()); },
                             "Strides in elements (NumPy's are in bytes).")
      .def_property_readonly("offset", &Tensor::offset, "Storage offset in elements.")
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("device", &Tensor::device)
      .def_property_readonly("ndim", &Tensor::dim)
      .def_property_readonly("nbytes", &Tensor::nbytes)
      .def_property_readonly("defined", &Tensor::defined)
      .def("dim", &Tensor::dim, "Number of dimensions.")
      .def("size", [](const Tensor& s, std::optional<int64_t> d) -> py::object {
             if (d) return py::int_(s.size(*d));
             return shape_to_py(s.shape());
           },
           py::arg("dim") = py::none(), "Extent of `dim`, or the shape when dim is None.")
      .def("stride", &Tensor::stride, py::arg("dim"), "Stride of `dim` in elements.")
      .def("numel", &Tensor::numel, "Number of elements.")
      .def("element_size", &Tensor::element_size, "Bytes per element.")
      .def("is_contiguous", &Tensor::is_contiguous, "True when the elements are laid out row-major without gaps.")
      .def("data_ptr", [](const Tensor& s) { return reinterpret_cast<uintptr_t>(s.data_ptr()); },
           "Address of element [0, ..., 0].")
      .def("describe", &Tensor::describe, "'f32[2, 3] on cpu', as used in error messages.")
      .def("use_count", &Tensor::use_count, "Number of handles to this tensor object.")
      .def("is_same", &Tensor::is_same, py::arg("other"), "True when both handles are the same tensor object.")
      .def("__len__", [](const Tensor& s) {
        if (s.dim() == 0) throw py::type_error("len() of a 0-d tensor");
        return s.size(0);
      })
      .def("__repr__", &Tensor::str)
      .def("__str__", &Tensor::str)
      .def("str", &Tensor::str, "The NumPy-like printout (same as repr).")
      .def("__hash__", [](const Tensor& s) { return reinterpret_cast<uintptr_t>(s.impl()); })
      .def("__bool__", [](const Tensor& s) {
        if (s.numel() != 1) throw py::value_error("the truth value of a tensor with " + std::to_string(s.numel()) +
                                                  " elements is ambiguous");
        return s.item() != 0.0;
      })
      .def("__float__", [](const Tensor& s) { return s.item(); })
      .def("__int__", [](const Tensor& s) { return static_cast<int64_t>(s.item()); })
      .def("__index__", [](const Tensor& s) {
        KIRZL_CHECK(!is_floating(s.dtype()) && s.numel() == 1, "__index__ needs a one-element integer tensor, got ",
                    s.describe());
        return static_cast<int64_t>(s.item());
      });
  t.attr("__array_ufunc__") = py::none();  // ndarray (op) Tensor defers to Tensor's reflected operators
  t.attr("__array_priority__") = 1000;

  // ---- views ----
  t.def("view", [](const Tensor& s, py::args shape) { return s.view(shape_from_args(shape)); }, "Same elements in a new shape (one extent may be -1); shares storage. Needs a viewable layout.")
      .def("reshape", [](const Tensor& s, py::args shape) { return s.reshape(shape_from_args(shape)); }, "view() when the layout allows it, else a contiguous copy.")
      .def("slice", &Tensor::slice, py::arg("dim"), py::arg("start"), py::arg("end"), py::arg("step") = 1, "Elements start, start+step, ... < end along `dim` (a view; Python slice rules).")
      .def("narrow", &Tensor::narrow, py::arg("dim"), py::arg("start"), py::arg("length"), "`length` elements from `start` along `dim` (a view).")
      .def("select", &Tensor::select, py::arg("dim"), py::arg("index"), "Index `index` of `dim`, removing that dimension (a view).")
      .def("transpose", &Tensor::transpose, py::arg("dim0"), py::arg("dim1"), "Swaps two dimensions (a view).")
      .def("t", &Tensor::t, "Transpose of a 2-D tensor (a view).")
      .def_property_readonly("T", [](const Tensor& s) {
        std::vector<int64_t> dims(s.dim());
        for (int64_t i = 0; i < s.dim(); ++i) dims[i] = s.dim() - 1 - i;
        return s.permute(Shape(dims));
      })
      .def("permute", [](const Tensor& s, py::args dims) { return s.permute(shape_from_args(dims)); }, "Reorders the dimensions (a view).")
      .def("expand", [](const Tensor& s, py::args shape) { return s.expand(shape_from_args(shape)); }, "Broadcasts size-1 dimensions to `shape` with stride 0 (a view; -1 keeps a size).")
      .def("squeeze", [](const Tensor& s, std::optional<int64_t> d) { return d ? s.squeeze(*d) : s.squeeze(); },
           py::arg("dim") = py::none(), "Removes size-1 dimensions (all, or `dim`).")
      .def("unsqueeze", &Tensor::unsqueeze, py::arg("dim"), "Inserts a size-1 dimension at `dim`.")
      .def("flatten", &Tensor::flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1, "Merges dims start_dim..end_dim into one (a view when contiguous).");

  // ---- copies and conversions ----
  t.def("contiguous", &Tensor::contiguous, "This tensor when contiguous, else a contiguous copy (differentiable).")
      .def("clone", &Tensor::clone, "A contiguous copy with its own storage (differentiable).")
      .def("to", [](const Tensor& s, const py::object& target, const py::object& dtype, const py::object& device) {
             Tensor r = s;
             if (!target.is_none()) {
               if (py::isinstance<Device>(target)) r = r.to(target.cast<Device>());
               else if (py::isinstance<py::str>(target)) {
                 std::string str = target.cast<std::string>();
                 if (str.rfind("cpu", 0) == 0 || str.rfind("cuda", 0) == 0) r = r.to(Device(str));
                 else r = r.to(dtype_from_py(target));
               } else r = r.to(dtype_from_py(target));
             }
             if (!device.is_none()) r = r.to(device_from_py(device));
             if (!dtype.is_none()) r = r.to(dtype_from_py(dtype));
             return r;
           },
           py::arg("target") = py::none(), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
           "Converted copy on another device and/or dtype (this tensor when nothing changes).")
      .def("cpu", [](const Tensor& s) { return s.to(Device::cpu()); }, "This tensor on the CPU (a copy for CUDA tensors).")
      .def("item", [](const Tensor& s) -> py::object {
        double v = s.item();
        if (is_floating(s.dtype())) return py::float_(v);
        return py::int_(static_cast<int64_t>(v));
      }, "The single element as a Python float or int.")
      .def("numpy", &tensor_to_numpy,
           "A NumPy array sharing this CPU tensor's memory (CUDA tensors are copied to the host; bf16 raises).")
      .def("__array__", [](const Tensor& s, const py::object& dtype, const py::object& copy) {
             py::object a = tensor_to_numpy(s);
             if (!dtype.is_none()) a = a.attr("astype")(dtype);
             else if (!copy.is_none() && copy.cast<bool>()) a = a.attr("copy")();
             return a;
           },
           py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def("tolist", [](const Tensor& s) { return tensor_to_numpy(s).attr("tolist")(); }, "The elements as nested Python lists (copies).");

  // ---- in place ----
  t.def("zero_", &Tensor::zero_, py::return_value_policy::reference_internal, "Fills with zeros in place; returns self.")
      .def("fill_", &Tensor::fill_, py::arg("value"), py::return_value_policy::reference_internal, "Fills with `value` in place; returns self.")
      .def("copy_", [](Tensor& s, const py::object& src) -> Tensor& { return s.copy_(to_tensor(src)); }, py::arg("src"),
           py::return_value_policy::reference_internal, "Copies `src` (tensor, NumPy array or number; broadcast, any dtype/device) into this tensor in place.")
      .def("add_", [](Tensor& s, const py::object& o, double alpha) -> Tensor& {
             if (py::isinstance<py::float_>(o) || py::isinstance<py::int_>(o))
               return s.add_(scalar_tensor(o.cast<double>() , options_of(s)), alpha);
             return s.add_(to_tensor(o), alpha);
           },
           py::arg("other"), py::arg("alpha") = 1.0, py::return_value_policy::reference_internal, "self += alpha * other in place.")
      .def("mul_", &Tensor::mul_, py::arg("value"), py::return_value_policy::reference_internal, "self *= value in place.")
      .def("set_data", &Tensor::set_data, py::arg("src"), "Makes this tensor refer to `src`'s data, keeping its autograd identity (like Module.to).");

  // ---- indexing ----
  t.def("__getitem__", [](const Tensor& s, const py::object& key) { return index_tensor(s, key); })
      .def("__setitem__", [](Tensor& s, const py::object& key, const py::object& value) {
        Tensor v = index_tensor(s, key);
        if (py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)) v.fill_(value.cast<double>());
        else v.copy_(to_tensor(value));
      })
      .def("__iter__", [](const Tensor& s) {
        if (s.dim() == 0) throw py::type_error("iteration over a 0-d tensor");
        py::list items;
        for (int64_t i = 0; i < s.size(0); ++i) items.append(py::cast(s.select(0, i)));
        return py::iter(items);
      });

  // ---- operators ----
  using BT = Tensor (*)(const Tensor&, const Tensor&);
  using BS = Tensor (*)(const Tensor&, double);
  t.def("__add__", [](const Tensor& a, const py::object& b) { return binop(a, b, (BT)&add, (BS)&add); }, py::is_operator())
      .def("__radd__", [](const Tensor& a, const py::object& b) { return binop(a, b, [](const Tensor& x, const Tensor& y) { return add(y, x); }, (BS)&add); }, py::is_operator())
      .def("__sub__", [](const Tensor& a, const py::object& b) { return binop(a, b, (BT)&sub, (BS)&sub); }, py::is_operator())
      .def("__rsub__", [](const Tensor& a, const py::object& b) { return binop(a, b, [](const Tensor& x, const Tensor& y) { return sub(y, x); }, &rsub); }, py::is_operator())
      .def("__mul__", [](const Tensor& a, const py::object& b) { return binop(a, b, (BT)&mul, (BS)&mul); }, py::is_operator())
      .def("__rmul__", [](const Tensor& a, const py::object& b) { return binop(a, b, [](const Tensor& x, const Tensor& y) { return mul(y, x); }, (BS)&mul); }, py::is_operator())
      .def("__truediv__", [](const Tensor& a, const py::object& b) { return binop(a, b, (BT)&div, (BS)&div); }, py::is_operator())
      .def("__rtruediv__", [](const Tensor& a, const py::object& b) { return binop(a, b, [](const Tensor& x, const Tensor& y) { return div(y, x); }, &rdiv); }, py::is_operator())
      .def("__matmul__", [](const Tensor& a, const py::object& b) {
             Tensor bt = to_tensor(b);
             MaybeRelease rel(a.numel() * bt.numel() > 4096);
             return matmul(a, bt);
           }, py::is_operator())
      .def("__rmatmul__", [](const Tensor& a, const py::object& b) { return matmul(to_tensor(b), a); }, py::is_operator())
      .def("__pow__", [](const Tensor& a, double e) { return pow(a, e); }, py::is_operator())
      .def("__neg__", [](const Tensor& a) { return neg(a); })
      .def("__abs__", [](const Tensor& a) { return abs(a); })
      .def("__eq__", [](const Tensor& a, const py::object& b) { return binop(a, b, &eq, [](const Tensor& x, double v) { return eq(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__ne__", [](const Tensor& a, const py::object& b) { return binop(a, b, &ne, [](const Tensor& x, double v) { return ne(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__lt__", [](const Tensor& a, const py::object& b) { return binop(a, b, &lt, [](const Tensor& x, double v) { return lt(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__le__", [](const Tensor& a, const py::object& b) { return binop(a, b, &le, [](const Tensor& x, double v) { return le(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__gt__", [](const Tensor& a, const py::object& b) { return binop(a, b, &gt, [](const Tensor& x, double v) { return gt(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__ge__", [](const Tensor& a, const py::object& b) { return binop(a, b, &ge, [](const Tensor& x, double v) { return ge(x, scalar_tensor(v, options_of(x))); }); }, py::is_operator())
      .def("__iadd__", [](Tensor& a, const py::object& b) -> Tensor& {
             if (py::isinstance<py::float_>(b) || py::isinstance<py::int_>(b)) return a.add_(scalar_tensor(b.cast<double>(), options_of(a)));
             return a.add_(to_tensor(b));
           }, py::is_operator(), py::return_value_policy::reference_internal)
      .def("__isub__", [](Tensor& a, const py::object& b) -> Tensor& {
             if (py::isinstance<py::float_>(b) || py::isinstance<py::int_>(b)) return a.add_(scalar_tensor(b.cast<double>(), options_of(a)), -1.0);
             return a.add_(to_tensor(b), -1.0);
           }, py::is_operator(), py::return_value_policy::reference_internal)
      .def("__imul__", [](Tensor& a, const py::object& b) -> Tensor& {
             KIRZL_CHECK_CODE(py::isinstance<py::float_>(b) || py::isinstance<py::int_>(b), ErrorCode::Unsupported,
                              "Tensor *= : only a Python number is supported in place (use t = t * other)");
             return a.mul_(b.cast<double>());
           }, py::is_operator(),
           py::return_value_policy::reference_internal);

  // ---- factories ----
  auto kw = [](const char* name) { return py::arg(name) = py::none(); };
  m.def("empty", [](py::args shape, py::object dtype, py::object device, bool rg) { return empty(shape_from_args(shape), options_from(dtype, device, rg)); },
        kw("dtype"), kw("device"), py::arg("requires_grad") = false, "Uninitialised tensor of the given shape.");
  m.def("zeros", [](py::args shape, py::object dtype, py::object device, bool rg) { return zeros(shape_from_args(shape), options_from(dtype, device, rg)); },
        kw("dtype"), kw("device"), py::arg("requires_grad") = false, "Zeros: kirzl.zeros(2, 3) or kirzl.zeros((2, 3)).");
  m.def("ones", [](py::args shape, py::object dtype, py::object device, bool rg) { return ones(shape_from_args(shape), options_from(dtype, device, rg)); },
        kw("dtype"), kw("device"), py::arg("requires_grad") = false, "Ones.");
  m.def("full", [](const py::object& shape, double value, py::object dtype, py::object device, bool rg) { return full(shape_from_py(shape), value, options_from(dtype, device, rg)); },
        py::arg("shape"), py::arg("fill_value"), kw("dtype"), kw("device"), py::arg("requires_grad") = false, "A tensor of `shape` filled with `fill_value`.");
  m.def("zeros_like", [](const Tensor& x, bool rg) { return zeros_like(x, rg); }, py::arg("t"), py::arg("requires_grad") = false, "Zeros like `t`.");
  m.def("ones_like", [](const Tensor& x, bool rg) { return ones_like(x, rg); }, py::arg("t"), py::arg("requires_grad") = false, "Ones like `t`.");
  m.def("empty_like", &empty_like, py::arg("t"), "Uninitialised tensor like `t`.");
  m.def("full_like", &full_like, py::arg("t"), py::arg("fill_value"), "A tensor like `t` filled with `fill_value`.");
  m.def("arange", [](double a, std::optional<double> b, double step, py::object dtype, py::object device, bool rg) {
          double start = b ? a : 0.0, end = b ? *b : a;
          return arange(start, end, step, options_from(dtype, device, rg, DType::i64));
        },
        py::arg("start"), py::arg("end") = py::none(), py::arg("step") = 1.0, kw("dtype"), kw("device"),
        py::arg("requires_grad") = false, "[start, end) with step; i64 unless dtype says otherwise.");
  m.def("rand", [](py::args shape, py::object dtype, py::object device, bool rg, py::object gen) { return rand(shape_from_args(shape), options_from(dtype, device, rg), gen.is_none() ? nullptr : gen.cast<Generator*>()); },
        kw("dtype"), kw("device"), py::arg("requires_grad") = false, py::arg("generator").none(true) = py::none(), "Uniform in [0, 1).");
  m.def("randn", [](py::args shape, py::object dtype, py::object device, bool rg, py::object gen) { return randn(shape_from_args(shape), options_from(dtype, device, rg), gen.is_none() ? nullptr : gen.cast<Generator*>()); },
        kw("dtype"), kw("device"), py::arg("requires_grad") = false, py::arg("generator").none(true) = py::none(), "Standard normal.");
  m.def("uniform", [](const py::object& shape, double lo, double hi, py::object dtype, py::object device, bool rg, Generator* gen) { return uniform(shape_from_py(shape), lo, hi, options_from(dtype, device, rg), gen); },
        py::arg("shape"), py::arg("low"), py::arg("high"), kw("dtype"), kw("device"), py::arg("requires_grad") = false, py::arg("generator").none(true) = py::none(),
        "Uniform in [low, high) from the (seeded) generator.");
  m.def("normal", [](const py::object& shape, double mean, double std, py::object dtype, py::object device, bool rg, Generator* gen) { return normal(shape_from_py(shape), mean, std, options_from(dtype, device, rg), gen); },
        py::arg("shape"), py::arg("mean") = 0.0, py::arg("std") = 1.0, kw("dtype"), kw("device"), py::arg("requires_grad") = false, py::arg("generator").none(true) = py::none(),
        "Normal N(mean, std^2) from the (seeded) generator.");
  m.def("randint", [](int64_t lo, int64_t hi, const py::object& shape, py::object dtype, py::object device, Generator* gen) { return randint(lo, hi, shape_from_py(shape), options_from(dtype, device, false, DType::i64), gen); },
        py::arg("low"), py::arg("high"), py::arg("shape"), kw("dtype"), kw("device"), py::arg("generator").none(true) = py::none(),
        "Uniform integers in [low, high).");
  m.def("randperm", &randperm, py::arg("n"), py::arg("generator").none(true) = py::none(), "A permutation of 0..n-1 (i64).");
  m.def("scalar_tensor", [](double v, py::object dtype, py::object device, bool rg) { return scalar_tensor(v, options_from(dtype, device, rg)); },
        py::arg("value"), kw("dtype"), kw("device"), py::arg("requires_grad") = false, "A 0-d tensor.");
  m.def("from_numpy", &from_numpy, py::arg("array"), py::arg("copy") = false,
        "A tensor sharing `array`'s memory (zero-copy) when its dtype and layout allow; otherwise, or with "
        "copy=True, a copy. See the module docs (Note [numpy sharing]) for when it copies.");
  m.def("_to_tensor", &to_tensor, py::arg("data"));
}

}  // namespace kirzl::python
