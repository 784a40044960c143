// kirzl::Error -> Python exceptions. One class per ErrorCode, each also derived from the built-in
// exception a Python user would catch for that kind of failure. str(exc) is the C++ what().
#include "common.h"

namespace kirzl::python {

namespace {

struct ErrorClasses {
  py::object base;
  py::object by_code[8];
};

ErrorClasses& classes() {
  static ErrorClasses* c = new ErrorClasses();  // leaked on purpose: lives as long as the module
  return *c;
}

py::object make_class(py::module_& m, const char* name, const char* doc, py::tuple bases) {
  std::string qual = std::string("kirzl.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qual.c_str(), doc, bases.ptr(), nullptr);
  if (!cls) throw py::error_already_set();
  py::object o = py::reinterpret_steal<py::object>(cls);
  m.attr(name) = o;
  return o;
}

}  // namespace

void init_errors(py::module_& m) {
  py::enum_<ErrorCode>(m, "ErrorCode", "What kind of failure a kirzl.Error reports.")
      .value("InvalidArgument", ErrorCode::InvalidArgument)
      .value("Unsupported", ErrorCode::Unsupported)
      .value("Cuda", ErrorCode::Cuda)
      .value("Nccl", ErrorCode::Nccl)
      .value("Mpi", ErrorCode::Mpi)
      .value("Timeout", ErrorCode::Timeout)
      .value("Io", ErrorCode::Io)
      .value("Internal", ErrorCode::Internal);

  auto& c = classes();
  py::object builtins = py::module_::import("builtins");
  c.base = make_class(m, "Error",
                      "Base of every exception kirzl raises. str(e) is the C++ what() "
                      "(\"kirzl::Error [Code] message\"); e.code is a kirzl.ErrorCode and e.message "
                      "the message without the prefix.",
                      py::make_tuple(builtins.attr("Exception")));
  struct Spec {
    ErrorCode code;
    const char* name;
    const char* builtin;
    const char* doc;
  };
  const Spec specs[] = {
      {ErrorCode::InvalidArgument, "InvalidArgumentError", "ValueError", "An argument the operation cannot accept."},
      {ErrorCode::Unsupported, "UnsupportedError", "NotImplementedError",
       "A valid request this build or device cannot do."},
      {ErrorCode::Cuda, "CudaError", "RuntimeError", "A CUDA runtime / cuBLAS / cuDNN call failed."},
      {ErrorCode::Nccl, "NcclError", "RuntimeError", "An NCCL call failed."},
      {ErrorCode::Mpi, "MpiError", "RuntimeError", "An MPI call failed."},
      {ErrorCode::Timeout, "CommTimeoutError", "TimeoutError", "A collective or wait did not complete in time."},
      {ErrorCode::Io, "IoError", "OSError", "Reading or writing a file failed, or the file is malformed."},
      {ErrorCode::Internal, "InternalError", "RuntimeError", "A kirzl bug: an internal invariant did not hold."},
  };
  for (const Spec& s : specs)
    c.by_code[static_cast<int>(s.code)] =
        make_class(m, s.name, s.doc, py::make_tuple(c.base, builtins.attr(s.builtin)));

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      py::object cls = classes().by_code[static_cast<int>(e.code())];
      py::object exc = cls(py::str(e.what()));
      exc.attr("code") = py::cast(e.code());
      exc.attr("message") = py::str(e.message());
      PyErr_SetObject(cls.ptr(), exc.ptr());
    }
  });
}

}  // namespace kirzl::python
