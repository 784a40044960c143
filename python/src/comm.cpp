// kirzl.comm and DistributedDataParallel. Every wait on a collective releases the GIL.
//
// The module-level collectives (kirzl.all_reduce, broadcast, all_gather, reduce_scatter, barrier)
// take a kirzl Tensor, any object with __dlpack__ (torch, CuPy, JAX, NumPy >= 1.22) or a writeable
// C-contiguous NumPy array, wrap it without copying, and work in place: the object passed in holds
// the result and is returned.
#include "common.h"

#include <kirzl/io/ddp_checkpoint.hpp>

#include <chrono>

namespace kirzl::python {

comm::ProcessGroup PyProcessGroup::get() const {
  py::gil_scoped_release rel;
  return comm::init();
}

namespace {

using comm::Communicator;
using comm::ProcessGroup;
using comm::ReduceOp;
using std::chrono::milliseconds;

ReduceOp op_from(const py::object& o) {
  if (py::isinstance<ReduceOp>(o)) return o.cast<ReduceOp>();
  auto s = o.cast<std::string>();
  if (s == "sum") return ReduceOp::Sum;
  if (s == "avg" || s == "mean") return ReduceOp::Avg;
  if (s == "min") return ReduceOp::Min;
  if (s == "max") return ReduceOp::Max;
  if (s == "prod") return ReduceOp::Prod;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "reduce op must be 'sum', 'avg', 'min', 'max' or 'prod', got '", s, "'");
}

milliseconds timeout_from(const py::object& seconds) {
  if (seconds.is_none()) return milliseconds{0};
  double s = seconds.cast<double>();
  KIRZL_CHECK(s >= 0, "timeout must be >= 0 seconds, got ", s);
  return milliseconds{static_cast<int64_t>(s * 1000.0 + 0.5)};
}

// Note [communicator release without the GIL]: destroying a communicator stops its worker thread
// and waits for it. A worker that finishes (or abandons) a collective drops the op's tensors, and
// a tensor that wraps a NumPy array or a DLPack producer takes the GIL to let go of it. If the
// thread that destroys the communicator holds the GIL — Python dropping its last reference does —
// the two wait for each other for ever. So every communicator handed to Python is held through a
// reference whose deleter lets go of the GIL (when this thread holds it) before it drops the
// communicator, as PyDDP does for DistributedDataParallel.
// Drops what `holder` holds, with the GIL released when this thread holds it (and the interpreter
// is still running: after finalisation there is no GIL to release).
template <typename Holder>
void reset_without_gil(Holder& holder) {
  if (Py_IsInitialized() && PyGILState_Check()) {
    py::gil_scoped_release rel;
    holder.reset();
  } else {
    holder.reset();
  }
}

std::shared_ptr<Communicator> released_without_gil(std::shared_ptr<Communicator> c) {
  if (!c) return c;
  Communicator* raw = c.get();
  return std::shared_ptr<Communicator>(raw, [keep = std::move(c)](Communicator*) mutable { reset_without_gil(keep); });
}

std::shared_ptr<Communicator> comm_from(const py::object& group) {
  if (group.is_none()) {
    ProcessGroup g;
    {
      py::gil_scoped_release rel;
      g = comm::init();
    }
    return g.communicator();
  }
  if (py::isinstance<PyProcessGroup>(group)) return group.cast<const PyProcessGroup&>().get().communicator();
  return group.cast<std::shared_ptr<Communicator>>();
}

// Runs a collective started by `start(blocking)`: with async_op, returns its Work; otherwise runs it
// to the end as a blocking collective (Note [blocking collectives]) with the GIL released, and
// returns `result`. Whatever `start` reads from Python objects must be read before.
template <typename Start>
py::object run_collective(bool async_op, const py::object& result, Start start) {
  if (async_op) return py::cast(start(false));
  {
    py::gil_scoped_release rel;
    start(true);
  }
  return result;
}

struct PyDDP;
struct NoSyncContext {
  PyDDP* ddp;
  std::unique_ptr<DistributedDataParallel::NoSyncGuard> guard;
};

struct TraceContext {
  PyDDP* ddp;
  std::string name;
  std::unique_ptr<io::Timeline::Scope> scope;
};

// The Python DistributedDataParallel: owns the C++ object so that close() (called for every live
// wrapper at interpreter exit, see python/kirzl/__init__.py) can destroy it while MPI is still up.
// Python's shutdown does not reliably deallocate every object, and a DDP that outlives it would
// keep the world communicator (and MPI) from being finalised.
struct PyDDP {
  std::unique_ptr<DistributedDataParallel> impl;
  DistributedDataParallel& get() {
    KIRZL_CHECK(impl != nullptr, "DistributedDataParallel: used after close()");
    return *impl;
  }
  void close() {
    py::gil_scoped_release rel;
    impl.reset();
  }
  ~PyDDP() { reset_without_gil(impl); }
};

}  // namespace

void init_comm(py::module_& top) {
  py::module_ m = top.def_submodule("comm", "Collectives between ranks and the process-group bootstrap.");
  py::enum_<ReduceOp>(m, "ReduceOp")
      .value("Sum", ReduceOp::Sum)
      .value("Avg", ReduceOp::Avg)
      .value("Min", ReduceOp::Min)
      .value("Max", ReduceOp::Max)
      .value("Prod", ReduceOp::Prod);

  py::class_<comm::Work>(m, "Work", "Handle of an asynchronous collective; wait() re-raises its failure.")
      .def("wait", [](const comm::Work& w, const py::object& timeout) {
             milliseconds t = timeout_from(timeout);
             py::gil_scoped_release rel;
             w.wait(t);
           },
           py::arg("timeout") = py::none(), "Blocks (GIL released) until done; timeout in seconds (None: the collective's own).")
      .def("is_completed", &comm::Work::is_completed, "True when the collective has finished (successfully or not). Never blocks.")
      .def("succeeded", &comm::Work::succeeded, "True when it finished successfully.");

  py::class_<Communicator, std::shared_ptr<Communicator>>(m, "Communicator", R"doc(
A group of ranks running collectives together. Methods are asynchronous and return a Work;
tensors (or DLPack/NumPy arrays) are borrowed until the Work completes and are updated in place.
)doc")
      .def("rank", &Communicator::rank, "This rank's index.")
      .def("size", &Communicator::size, "Number of ranks.")
      .def("backend", &Communicator::backend, "'inprocess', 'mpi', ...")
      .def("default_timeout", [](const Communicator& c) { return c.default_timeout().count() / 1000.0; }, "Seconds.")
      .def("all_reduce", [](Communicator& c, const py::object& x, const py::object& op, const py::object& timeout, const std::string& tag) {
             Tensor t = to_tensor_inplace(x, "all_reduce");
             return c.all_reduce(t, {.op = op_from(op), .timeout = timeout_from(timeout), .tag = tag});
           },
           py::arg("tensor"), py::arg("op") = "sum", py::arg("timeout") = py::none(), py::arg("tag") = "",
           "Reduces `tensor` (kirzl, NumPy or DLPack) over all ranks in place; returns a Work. `op`: sum, avg, min, max, prod.")
      .def("broadcast", [](Communicator& c, const py::object& x, int root, const py::object& timeout, const std::string& tag) {
             Tensor t = to_tensor_inplace(x, "broadcast");
             return c.broadcast(t, {.root = root, .timeout = timeout_from(timeout), .tag = tag});
           },
           py::arg("tensor"), py::arg("root") = 0, py::arg("timeout") = py::none(), py::arg("tag") = "",
           "Copies rank `root`'s `tensor` into every rank's, in place; returns a Work.")
      .def("all_gather", [](Communicator& c, const py::object& out, const py::object& in, const py::object& timeout, const std::string& tag) {
             Tensor o = to_tensor_inplace(out, "all_gather"), i = to_tensor(in);
             return c.all_gather(o, i, {.timeout = timeout_from(timeout), .tag = tag});
           },
           py::arg("output"), py::arg("input"), py::arg("timeout") = py::none(), py::arg("tag") = "",
           "Writes every rank's `input` into `output` (size() * input elements, rank r at offset r * input.numel); returns a Work.")
      .def("reduce_scatter", [](Communicator& c, const py::object& out, const py::object& in, const py::object& op, const py::object& timeout, const std::string& tag) {
             Tensor o = to_tensor_inplace(out, "reduce_scatter"), i = to_tensor(in);
             return c.reduce_scatter(o, i, {.op = op_from(op), .timeout = timeout_from(timeout), .tag = tag});
           },
           py::arg("output"), py::arg("input"), py::arg("op") = "sum", py::arg("timeout") = py::none(), py::arg("tag") = "",
           "Reduces `input` (size() * output elements) over ranks and leaves rank r's share in `output`; returns a Work.")
      .def("barrier", [](Communicator& c, const py::object& timeout, const std::string& tag) {
             return c.barrier({.timeout = timeout_from(timeout), .tag = tag});
           },
           py::arg("timeout") = py::none(), py::arg("tag") = "",
           "Completes when every rank has called it; returns a Work.")
      .def("split", [](Communicator& c, int color, int key) {
             std::shared_ptr<Communicator> sub;
             {
               py::gil_scoped_release rel;
               sub = c.split(color, key);
             }
             return released_without_gil(std::move(sub));  // Note [communicator release without the GIL]
           },
           py::arg("color"), py::arg("key"), "Like MPI_Comm_split (collective; None for a negative color).");

  m.def("make_in_process_group", [](int n, const py::object& timeout) {
          auto comms = comm::make_in_process_group(n, {.timeout = timeout_from(timeout)});
          for (auto& c : comms) c = released_without_gil(std::move(c));  // Note [communicator release without the GIL]
          return comms;
        },
        py::arg("n"), py::arg("timeout") = py::none(),
        "n communicators whose ranks are threads of this process (drive each from its own thread).");

  py::class_<PyProcessGroup>(m, "ProcessGroup", "The world: this process's rank, its device and the world communicator.")
      .def("rank", [](const PyProcessGroup& g) { return g.get().rank(); }, "This rank's index.")
      .def("size", [](const PyProcessGroup& g) { return g.get().size(); }, "Number of ranks.")
      .def("local_rank", [](const PyProcessGroup& g) { return g.get().local_rank(); }, "This process's index among the ranks on its node.")
      .def("local_size", [](const PyProcessGroup& g) { return g.get().local_size(); }, "Number of ranks on this node.")
      .def_property_readonly("device", [](const PyProcessGroup& g) { return g.get().device(); },
                             "CUDA:(local rank) when a GPU is there, else the CPU.")
      .def("communicator", [](const PyProcessGroup& g) { return released_without_gil(g.get().communicator()); },
           "The communicator (shared).")
      .def("backend", [](const PyProcessGroup& g) { return g.get().backend(); }, "'inprocess', 'mpi', ...")
      .def("hosts", [](const PyProcessGroup& g) { return g.get().hosts(); }, "Host name of every rank.")
      .def("launcher", [](const PyProcessGroup& g) { return g.get().launcher(); }, "The launcher that was detected ('openmpi', 'slurm', ..., 'none').")
      .def("__repr__", [](const PyProcessGroup& pg) {
        auto g = pg.get();
        return "kirzl.ProcessGroup(rank=" + std::to_string(g.rank()) + ", size=" + std::to_string(g.size()) +
               ", backend='" + g.backend() + "', device='" + g.device().str() + "')";
      });

  auto init_fn = [](const std::string& backend, const py::object& timeout) {
    comm::InitOptions o{.backend = backend, .timeout = timeout_from(timeout)};
    {
      py::gil_scoped_release rel;
      comm::init(o);
    }
    return PyProcessGroup{};
  };
  const char* init_doc =
      "Sets up the world once per process (mpirun/srun/plain) and returns it; later calls return the same group.";
  m.def("init", init_fn, py::arg("backend") = "auto", py::arg("timeout") = py::none(), init_doc);
  top.def("init", init_fn, py::arg("backend") = "auto", py::arg("timeout") = py::none(), init_doc);
  top.def("rank", [] { py::gil_scoped_release rel; return comm::init().rank(); }, "This process's rank (calls init()).");
  top.def("world_size", [] { py::gil_scoped_release rel; return comm::init().size(); }, "Number of ranks (calls init()).");

  // ---- collectives on anything array-like, in place ----
  top.def("all_reduce", [](const py::object& x, const py::object& op, const py::object& group, const py::object& timeout, bool async_op) {
            auto c = comm_from(group);
            Tensor t = to_tensor_inplace(x, "all_reduce");
            comm::AllReduceOptions o{.op = op_from(op), .timeout = timeout_from(timeout)};
            return run_collective(async_op, x, [&](bool blocking) {
              o.blocking = blocking;
              return c->all_reduce(t, o);
            });
          },
          py::arg("x"), py::arg("op") = "sum", py::arg("group") = py::none(), py::arg("timeout") = py::none(),
          py::arg("async_op") = false,
          "Reduces x over all ranks in place (kirzl Tensor, DLPack object or writeable C-contiguous NumPy array; "
          "no copy) and returns x (or a Work with async_op=True).");
  top.def("broadcast", [](const py::object& x, int root, const py::object& group, const py::object& timeout, bool async_op) {
            auto c = comm_from(group);
            Tensor t = to_tensor_inplace(x, "broadcast");
            comm::BroadcastOptions o{.root = root, .timeout = timeout_from(timeout)};
            return run_collective(async_op, x, [&](bool blocking) {
              o.blocking = blocking;
              return c->broadcast(t, o);
            });
          },
          py::arg("x"), py::arg("root") = 0, py::arg("group") = py::none(), py::arg("timeout") = py::none(),
          py::arg("async_op") = false, "Copies root's x into every rank's x, in place; returns x.");
  top.def("all_gather", [](const py::object& out, const py::object& in, const py::object& group, const py::object& timeout, bool async_op) {
            auto c = comm_from(group);
            Tensor o = to_tensor_inplace(out, "all_gather"), i = to_tensor(in);
            comm::AllGatherOptions opts{.timeout = timeout_from(timeout)};
            return run_collective(async_op, out, [&](bool blocking) {
              opts.blocking = blocking;
              return c->all_gather(o, i, opts);
            });
          },
          py::arg("output"), py::arg("input"), py::arg("group") = py::none(), py::arg("timeout") = py::none(),
          py::arg("async_op") = false, "output (world_size * input.numel() elements) receives every rank's input; returns output.");
  top.def("reduce_scatter", [](const py::object& out, const py::object& in, const py::object& op, const py::object& group,
                               const py::object& timeout, bool async_op) {
            auto c = comm_from(group);
            Tensor o = to_tensor_inplace(out, "reduce_scatter"), i = to_tensor(in);
            comm::ReduceScatterOptions opts{.op = op_from(op), .timeout = timeout_from(timeout)};
            return run_collective(async_op, out, [&](bool blocking) {
              opts.blocking = blocking;
              return c->reduce_scatter(o, i, opts);
            });
          },
          py::arg("output"), py::arg("input"), py::arg("op") = "sum", py::arg("group") = py::none(),
          py::arg("timeout") = py::none(), py::arg("async_op") = false,
          "Reduces input over ranks; rank r's output receives block r; returns output.");
  top.def("barrier", [](const py::object& group, const py::object& timeout) {
            auto c = comm_from(group);
            comm::BarrierOptions o{.timeout = timeout_from(timeout), .blocking = true};
            py::gil_scoped_release rel;
            c->barrier(o);
          },
          py::arg("group") = py::none(), py::arg("timeout") = py::none(), "Returns when every rank has reached it.");

}

void init_ddp(py::module_& top) {
  // ---- DistributedDataParallel ----
  py::class_<BucketInfo>(top, "BucketInfo", "One gradient bucket of DistributedDataParallel: index, parameter names, bytes, dtype, tag.")
      .def_readonly("index", &BucketInfo::index)
      .def_readonly("param_names", &BucketInfo::param_names)
      .def_readonly("bytes", &BucketInfo::bytes)
      .def_readonly("dtype", &BucketInfo::dtype)
      .def_readonly("tag", &BucketInfo::tag);
  py::class_<DDPStepStats>(top, "DDPStepStats", "Communication figures of the last synchronised backward (ms).")
      .def_readonly("backward_ms", &DDPStepStats::backward_ms)
      .def_readonly("first_launch_ms", &DDPStepStats::first_launch_ms)
      .def_readonly("comm_ms", &DDPStepStats::comm_ms)
      .def_readonly("comm_exposed_ms", &DDPStepStats::comm_exposed_ms)
      .def_readonly("comm_hidden_ms", &DDPStepStats::comm_hidden_ms)
      .def_readonly("buckets", &DDPStepStats::buckets)
      .def_readonly("gather_wait_ms", &DDPStepStats::gather_wait_ms,
                    "Sharded: how long the last forward waited for the parameters' all-gathers.")
      .def_readonly("forward_ms", &DDPStepStats::forward_ms, "The last forward, waits included.");
  py::class_<NoSyncContext>(top, "_NoSync")
      .def("__enter__", [](NoSyncContext& c) { c.guard = std::make_unique<DistributedDataParallel::NoSyncGuard>(c.ddp->get()); })
      .def("__exit__", [](NoSyncContext& c, py::args) { c.guard.reset(); return false; });
  py::class_<TraceContext>(top, "_TraceScope")
      .def("__enter__", [](TraceContext& c) { c.scope = c.ddp->get().trace(c.name); })
      .def("__exit__", [](TraceContext& c, py::args) { c.scope.reset(); return false; });

  py::class_<PyDDP>(top, "DistributedDataParallel", R"doc(
Wraps a module (C++ layer or Python subclass of kirzl.nn.Module) for data-parallel training:
broadcasts rank 0's parameters, then all-reduces gradient buckets while backward runs, so the
optimizer sees gradients averaged over ranks. `group` is a ProcessGroup (kirzl.init()) or a
Communicator. comm_hook: "allreduce" (default), "bf16_compress" or "fp16_compress". shard: "none"
(default), "optimizer" (ZeRO-1) or "gradients" (ZeRO-2); sharded, build the optimizer with
ddp.make_optimizer(kirzl.optim.AdamW, lr=...) and clip with ddp.clip_grad_norm_().
overlap_parameter_gather (sharded only, default True): the next forward waits for each bucket's
parameter all-gather in the forward pre-hook of the submodules that use it, so submodules must be
called (child(x)), not read directly; False waits for all of them before the module runs. The
module is kept alive by the wrapper.
)doc")
      .def(py::init([](nn::Module& module, const py::object& group, double bucket_cap_mb, double first_bucket_cap_mb,
                       bool find_unused, bool broadcast_buffers, bool overlap, const py::object& timeout,
                       const std::string& comm_hook, const std::string& timeline_path, const std::string& shard,
                       bool overlap_parameter_gather) {
             DDPOptions o{.bucket_cap_mb = bucket_cap_mb, .first_bucket_cap_mb = first_bucket_cap_mb,
                          .find_unused_parameters = find_unused, .broadcast_buffers = broadcast_buffers, .overlap = overlap,
                          .timeout = timeout_from(timeout), .overlap_parameter_gather = overlap_parameter_gather,
                          .timeline_path = timeline_path};
             if (shard == "optimizer") o.shard = Shard::optimizer;
             else if (shard == "gradients") o.shard = Shard::gradients;
             else KIRZL_CHECK(shard == "none", "DistributedDataParallel: shard must be 'none', 'optimizer' or "
                              "'gradients', got '", shard, "'");
             if (comm_hook == "bf16_compress") o.comm_hook = comm_hooks::bf16_compress();
             else if (comm_hook == "fp16_compress") o.comm_hook = comm_hooks::fp16_compress();
             else KIRZL_CHECK(comm_hook == "allreduce", "DistributedDataParallel: comm_hook must be 'allreduce', "
                              "'bf16_compress' or 'fp16_compress', got '", comm_hook, "'");
             auto c = comm_from(group);
             py::gil_scoped_release rel;
             auto d = std::make_unique<PyDDP>();
             d->impl = std::make_unique<DistributedDataParallel>(module, c, o);
             return d;
           }),
           py::arg("module"), py::arg("group") = py::none(), py::kw_only(), py::arg("bucket_cap_mb") = 25.0,
           py::arg("first_bucket_cap_mb") = 1.0, py::arg("find_unused_parameters") = false,
           py::arg("broadcast_buffers") = true, py::arg("overlap") = true, py::arg("timeout") = py::none(),
           py::arg("comm_hook") = "allreduce", py::arg("timeline_path") = "<env>", py::arg("shard") = "none",
           py::arg("overlap_parameter_gather") = true, py::keep_alive<1, 2>())
      .def("make_optimizer",
           [](PyDDP& d, const py::object& optimizer_class, const py::object& params, const py::kwargs& options) {
             DistributedDataParallel& ddp = d.get();
             const std::vector<optim::ParamGroup> groups =
                 params.is_none() ? std::vector<optim::ParamGroup>{{.params = ddp.trainable_parameters()}}
                                  : groups_from(params);
             py::object opt = optimizer_class(groups_to_py(ddp.shard_groups(groups)), **options);
             KIRZL_CHECK(py::isinstance<optim::Optimizer>(opt), "DistributedDataParallel.make_optimizer: ",
                         py::str(optimizer_class).cast<std::string>(), " did not build a kirzl optimizer");
             ddp.attach_optimizer(opt.cast<optim::Optimizer&>(), groups);
             return opt;
           },
           py::arg("optimizer_class"), py::arg("params") = py::none(),
           "optimizer_class(<this rank's shard of params>, **options), tied to this DDP: an optimizer over its own "
           "shard when sharded, over params (default: the trainable parameters) when not. params as for the "
           "optimizers: tensors, or parameter-group dicts.")
      .def("clip_grad_norm_",
           [](PyDDP& d, double max_norm, double norm_type, bool error_if_nonfinite) {
             auto& ddp = d.get();
             py::gil_scoped_release rel;
             return ddp.clip_grad_norm_(max_norm, {.norm_type = norm_type, .error_if_nonfinite = error_if_nonfinite});
           },
           py::arg("max_norm"), py::arg("norm_type") = 2.0, py::arg("error_if_nonfinite") = false,
           "Clips the gradients the optimizer will read to a global norm of max_norm (over every rank's shard "
           "when sharded: a collective); returns the norm before clipping as a 0-d f32 tensor.")
      .def("synchronize_parameters", [](PyDDP& d) { auto& ddp = d.get(); py::gil_scoped_release rel; ddp.synchronize_parameters(); },
           "Waits for the parameters' all-gather after a sharded optimizer's step (forward() does it).")
      .def("trainable_parameters", [](PyDDP& d) { return d.get().trainable_parameters(); },
           "The module's parameters that require grad, in registration order.")
      .def("forward", [](PyDDP& d, const py::object& x) {
             Tensor t = to_tensor(x);
             py::gil_scoped_release rel;
             return d.get().forward(t);
           }, py::arg("x"), "Runs the module's forward (GIL released), preparing the reducer for the backward that follows.")
      .def("__call__", [](PyDDP& d, const py::object& x) {
             Tensor t = to_tensor(x);
             py::gil_scoped_release rel;
             return d.get().forward(t);
           }, py::arg("x"), "Same as forward(x).")
      .def("no_sync", [](PyDDP& d) { return NoSyncContext{&d, nullptr}; }, py::keep_alive<0, 1>(),
           "Context manager: backward passes inside accumulate gradients locally without communicating.")
      .def("join", [](PyDDP& d, bool has_batch) { auto& r = d.get(); py::gil_scoped_release rel; return r.join(has_batch); },
           py::arg("has_batch"), "Uneven data: True while every rank still has a batch.")
      .def("module", [](PyDDP& d) -> nn::Module& { return d.get().module(); }, py::return_value_policy::reference_internal, "The wrapped module.")
      .def("communicator", [](PyDDP& d) -> comm::Communicator& { return d.get().communicator(); }, py::return_value_policy::reference_internal, "The communicator (shared).")
      .def("buckets", [](PyDDP& d) { return d.get().buckets(); }, "The gradient buckets (reverse registration order).")
      .def("last_step_stats", [](PyDDP& d) { return d.get().last_step_stats(); }, "Communication figures of the last synchronised backward.")
      .def("trace", [](PyDDP& d, const std::string& name) { return TraceContext{&d, name, nullptr}; },
           py::arg("name"), py::keep_alive<0, 1>(), "Context manager recording a user span in the timeline.")
      .def("close", &PyDDP::close, "Destroys the reducer now (writes the timeline); later use raises.")
      .def("write_timeline", [](PyDDP& d) { d.get().write_timeline(); }, "Writes the timeline now.");
}

void init_ddp_checkpoints(py::module_& top) {
  // The DDP overloads of kirzl.io.save_checkpoint / load_checkpoint (kirzl/io/ddp_checkpoint.hpp):
  // after init_io, so that pybind11 adds them to its functions as further overloads.
  py::module_ m = top.attr("io").cast<py::module_>();
  m.def("save_checkpoint",
        [](const std::string& dir, PyDDP& d, const optim::Optimizer* opt, int64_t step, int64_t epoch,
           std::map<std::string, std::string> config) {
          auto& ddp = d.get();
          io::CheckpointInfo info{step, epoch, std::move(config)};
          py::gil_scoped_release rel;
          io::save_checkpoint(dir, ddp, opt, info);
        },
        py::arg("path"), py::arg("model"), py::arg("opt").none(true) = py::none(), py::kw_only(), py::arg("step") = 0,
        py::arg("epoch") = 0, py::arg("config") = std::map<std::string, std::string>{},
        "With a DistributedDataParallel: every rank writes its share (its ZeRO shard of the optimizer state) into "
        "the directory `path`, committed atomically; it loads at any world size and shard setting.");
  m.def("load_checkpoint",
        [](const std::string& path, PyDDP& d, optim::Optimizer* opt, bool strict) {
          auto& ddp = d.get();
          py::gil_scoped_release rel;
          return io::load_checkpoint(path, ddp, opt, strict);
        },
        py::arg("path"), py::arg("model"), py::arg("opt").none(true) = py::none(), py::arg("strict") = true,
        "With a DistributedDataParallel: every rank reads a checkpoint written at any world size (a directory, or "
        "one file) into its module and optimizer, resharding; every rank loads, or every rank raises.");
}

}  // namespace kirzl::python
