// kirzl.io: checkpoints and safetensors files, metrics log (JSONL), progress bar, timeline traces.
#include "common.h"

#include <kirzl/io/sharded_checkpoint.hpp>

#include <cstdio>

namespace kirzl::python {

namespace {

using namespace kirzl::io;

void set_extra(MetricsRecord& r, const std::string& k, const py::handle& v) {
  if (py::isinstance<py::bool_>(v)) r.set(k, static_cast<int64_t>(v.cast<bool>()));
  else if (py::isinstance<py::int_>(v)) r.set(k, v.cast<int64_t>());
  else if (py::isinstance<py::float_>(v)) r.set(k, v.cast<double>());
  else if (py::isinstance<py::str>(v)) r.set(k, v.cast<std::string>());
  else r.set(k, py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>());  // tensors, NumPy scalars
}

MetricsRecord record_from(const py::kwargs& kw) {
  MetricsRecord r;
  for (auto item : kw) {
    auto k = item.first.cast<std::string>();
    py::handle v = item.second;
    auto opt = [&](std::optional<double>& f) { f = v.is_none() ? std::nullopt : std::optional<double>(py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>()); };
    if (k == "step") r.step = v.cast<int64_t>();
    else if (k == "epoch") r.epoch = v.cast<int64_t>();
    else if (k == "loss") opt(r.loss);
    else if (k == "accuracy") opt(r.accuracy);
    else if (k == "lr") opt(r.lr);
    else if (k == "samples_per_second") opt(r.samples_per_second);
    else if (k == "elapsed_seconds") opt(r.elapsed_seconds);
    else set_extra(r, k, v);
  }
  return r;
}

std::FILE* stream_from(const std::string& s) {
  if (s == "stderr") return stderr;
  if (s == "stdout") return stdout;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "ProgressBar: out must be 'stderr' or 'stdout', got '", s, "'");
}

}  // namespace

void init_io(py::module_& top) {
  py::module_ m = top.def_submodule("io", "Checkpoints (safetensors), metrics logs, progress bars, timelines.");
  m.attr("kCheckpointFormat") = kCheckpointFormat;

  py::class_<CheckpointInfo>(m, "CheckpointInfo", "Training position and free-form configuration of a checkpoint.")
      .def(py::init([](int64_t step, int64_t epoch, std::map<std::string, std::string> config) {
             return CheckpointInfo{step, epoch, std::move(config)};
           }),
           py::arg("step") = 0, py::arg("epoch") = 0, py::arg("config") = std::map<std::string, std::string>{})
      .def_readwrite("step", &CheckpointInfo::step)
      .def_readwrite("epoch", &CheckpointInfo::epoch)
      .def_readwrite("config", &CheckpointInfo::config)
      .def("__repr__", [](const CheckpointInfo& i) {
        return "CheckpointInfo(step=" + std::to_string(i.step) + ", epoch=" + std::to_string(i.epoch) + ")";
      });

  m.def("save_checkpoint",
        [](const std::string& path, const nn::Module& model, const optim::Optimizer* opt, int64_t step, int64_t epoch,
           std::map<std::string, std::string> config) {
          CheckpointInfo info{step, epoch, std::move(config)};
          py::gil_scoped_release rel;
          save_checkpoint(path, model, opt, info);
        },
        py::arg("path"), py::arg("model"), py::arg("opt").none(true) = py::none(), py::kw_only(), py::arg("step") = 0, py::arg("epoch") = 0,
        py::arg("config") = std::map<std::string, std::string>{},
        "Writes model (and optimizer) state and the training position to a safetensors file, atomically.");
  m.def("load_checkpoint",
        [](const std::string& path, nn::Module& model, optim::Optimizer* opt, bool strict) {
          py::gil_scoped_release rel;
          return load_checkpoint(path, model, opt, strict);
        },
        py::arg("path"), py::arg("model"), py::arg("opt").none(true) = py::none(), py::arg("strict") = true,
        "Restores a checkpoint into model (and opt) in place; returns its CheckpointInfo. All-or-nothing.");
  m.def("consolidate",
        [](const std::string& dir, const std::string& out_file, bool include_optimizer) {
          py::gil_scoped_release rel;
          consolidate(dir, out_file, include_optimizer);
        },
        py::arg("dir"), py::arg("out_file"), py::arg("include_optimizer") = true,
        "Writes a sharded checkpoint directory (e.g. a DDP checkpoint) as one ordinary safetensors file, "
        "atomically: a checkpoint that load_checkpoint(path, model, opt) and Python's safetensors read.");
  m.def("save_safetensors",
        [](const std::string& path, const py::object& tensors, std::map<std::string, std::string> metadata) {
          StateDict sd = state_dict_from_py(tensors);
          py::gil_scoped_release rel;
          save_safetensors(path, sd, metadata);
        },
        py::arg("path"), py::arg("tensors"), py::arg("metadata") = std::map<std::string, std::string>{},
        "Writes a dict of tensors (or NumPy arrays) as a safetensors file, atomically.");
  m.def("load_safetensors",
        [](const std::string& path, uint64_t max_header_bytes) {
          SafetensorsFile f;
          {
            py::gil_scoped_release rel;
            f = load_safetensors(path, {.max_header_bytes = max_header_bytes});
          }
          return py::make_tuple(state_dict_to_py(f.tensors), f.metadata);
        },
        py::arg("path"), py::arg("max_header_bytes") = uint64_t{100'000'000},
        "Reads a safetensors file: returns (dict of tensors, metadata dict). The file is validated as untrusted.");
  m.def("read_safetensors_header", [](const std::string& p) { return read_safetensors_header(p); }, py::arg("path"), "The JSON header of a safetensors file.");
  m.def("safetensors_dtype_name", [](const py::object& d) { return std::string(safetensors_dtype_name(dtype_from_py(d))); },
        py::arg("dtype"), "'F32', 'BF16', ... for a kirzl dtype.");

  py::class_<MetricsRecord>(m, "MetricsRecord", "One JSON line: step, epoch, optional standard fields, extra fields.")
      .def(py::init([](py::kwargs kw) { return record_from(kw); }))
      .def_readwrite("step", &MetricsRecord::step)
      .def_readwrite("epoch", &MetricsRecord::epoch)
      .def_readwrite("loss", &MetricsRecord::loss)
      .def_readwrite("accuracy", &MetricsRecord::accuracy)
      .def_readwrite("lr", &MetricsRecord::lr)
      .def_readwrite("samples_per_second", &MetricsRecord::samples_per_second)
      .def_readwrite("elapsed_seconds", &MetricsRecord::elapsed_seconds)
      .def("set", [](MetricsRecord& r, const std::string& k, const py::object& v) -> MetricsRecord& { set_extra(r, k, v); return r; },
           py::arg("name"), py::arg("value"), py::return_value_policy::reference_internal, "Adds (or replaces) an extra field; returns the record.")
      .def("to_json", &MetricsRecord::to_json, "The JSON object of this record.");
  py::class_<MetricsLog>(m, "MetricsLog", "Appends JSON lines to a file (empty path: disabled). Thread-safe.")
      .def(py::init<const std::string&>(), py::arg("path") = "")
      .def("enabled", &MetricsLog::enabled, "False when built with an empty path (does nothing).")
      .def("path", &MetricsLog::path, "The output file.")
      .def("log", [](MetricsLog& l, const py::object& rec, py::kwargs kw) {
             if (!rec.is_none()) l.log(rec.cast<const MetricsRecord&>());
             else l.log(record_from(kw));
           },
           py::arg("record") = py::none(), "log(record) or log(step=..., loss=..., any_extra=...).");

  py::class_<ProgressBar>(m, "ProgressBar", "One line of training progress on stderr (or stdout).")
      .def(py::init([](int64_t total, int64_t epoch, int64_t epochs, std::string label, bool enabled, const std::string& out,
                       std::optional<bool> interactive, int percent_every, int bar_width) {
             ProgressBar::Options o;
             o.total_steps = total;
             o.epoch = epoch;
             o.epochs = epochs;
             o.label = std::move(label);
             o.enabled = enabled;
             o.out = stream_from(out);
             o.interactive = interactive;
             o.percent_every = percent_every;
             o.bar_width = bar_width;
             return std::make_unique<ProgressBar>(o);
           }),
           py::kw_only(), py::arg("total_steps") = 0, py::arg("epoch") = 0, py::arg("epochs") = 0, py::arg("label") = "",
           py::arg("enabled") = true, py::arg("out") = "stderr", py::arg("interactive") = py::none(),
           py::arg("percent_every") = 10, py::arg("bar_width") = 20)
      .def("update", &ProgressBar::update, py::arg("step"), py::arg("loss"), py::arg("samples_per_second") = -1.0, "Reports `step` finished steps with the latest loss and throughput; draws when due.")
      .def("finish", &ProgressBar::finish, "Draws the final state and ends the line.")
      .def("interactive", &ProgressBar::interactive, "True when redrawing one line in place (a terminal).")
      .def("line", &ProgressBar::line, "The text of the current progress line.");
  m.def("format_duration", &format_duration, py::arg("seconds"), "'0:42', '1:02:03' for a number of seconds.");
  m.def("format_rate", &format_rate, py::arg("value"), "'512', '41.2k', '1.35M'.");

  py::class_<Timeline>(m, "Timeline", "Chrome-trace JSON recorder of named spans (empty path: disabled). Thread-safe.")
      .def(py::init<std::string, int>(), py::arg("path") = "", py::arg("pid") = 0)
      .def_static("path_from_env", &Timeline::path_from_env, py::arg("rank"), "The trace file for `rank` named by KIRZL_TIMELINE ('' when unset).")
      .def("enabled", &Timeline::enabled, "False when built with an empty path (does nothing).")
      .def("path", &Timeline::path, "The output file.")
      .def("now_us", &Timeline::now_us, "Microseconds since the timeline was created.")
      .def("span", &Timeline::span, py::arg("name"), py::arg("category"), py::arg("start_us"), py::arg("end_us"), py::arg("track") = 0, "Records a span [start_us, end_us) on lane `track`.")
      .def("write", &Timeline::write, "Writes the spans recorded so far (atomically).")
      .def("size", &Timeline::size, "Number of recorded spans.");
}

}  // namespace kirzl::python
