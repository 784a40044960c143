// The extension module kirzl._C. The Python package `kirzl` (python/kirzl) re-exports it and adds
// the pieces that are simpler in Python (no_grad, tensor(), nn.Module attribute registration).
#include "common.h"

PYBIND11_MODULE(_C, m) {
  using namespace kirzl::python;
  m.doc() = "kirzl's C++ core (use the `kirzl` package).";
  init_errors(m);
  init_tensor(m);
  init_cuda(m);
  init_dlpack(m);
  init_autograd(m);
  init_ops(m);
  init_comm(m);  // before nn and data: SyncBatchNorm and DistributedSampler accept its types
  init_nn(m);
  init_ddp(m);
  init_optim(m);
  init_data(m);
  init_io(m);
  init_ddp_checkpoints(m);
  init_models_gpt(m);
  init_profiler(m);
  m.attr("__version__") = std::to_string(KIRZL_VERSION_MAJOR) + "." + std::to_string(KIRZL_VERSION_MINOR) + "." +
                          std::to_string(KIRZL_VERSION_PATCH);
  m.attr("has_mpi") = bool(KIRZL_HAS_MPI);
  m.attr("has_cuda") = bool(KIRZL_HAS_CUDA);
}
