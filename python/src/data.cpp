// kirzl.data: datasets (TensorDataset over NumPy arrays or tensors, Fashion-MNIST, Python
// subclasses of Dataset), samplers and the prefetching DataLoader.
//
// GIL: iterating a DataLoader releases the GIL while it waits for the next batch, so the prefetch
// thread can run (and call a Python Dataset's get(), which takes the GIL). Destroying a loader
// also releases the GIL while it stops its thread.
#include "common.h"

namespace kirzl::python {

namespace {

using namespace kirzl::data;

class PyDataset : public Dataset, public py::trampoline_self_life_support {
 public:
  int64_t size() const override { PYBIND11_OVERRIDE_PURE(int64_t, Dataset, size, ); }
  Example get(int64_t index) const override {
    py::gil_scoped_acquire gil;
    py::function f = py::get_override(static_cast<const Dataset*>(this), "get");
    KIRZL_CHECK_CODE(static_cast<bool>(f), ErrorCode::Unsupported, "Dataset subclass must define get(index)");
    py::object r = f(index);
    auto tup = r.cast<py::sequence>();
    KIRZL_CHECK(tup.size() == 2, "Dataset.get must return (input, target), got ", tup.size(), " values");
    return {to_tensor(tup[0]).clone(), to_tensor(tup[1]).clone()};
  }
};

py::tuple example_to_py(const Example& e) { return py::make_tuple(e.input, e.target); }

Split split_from(const py::object& o) {
  if (py::isinstance<Split>(o)) return o.cast<Split>();
  auto s = o.cast<std::string>();
  if (s == "train") return Split::Train;
  if (s == "test") return Split::Test;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "split must be 'train' or 'test', got '", s, "'");
}

struct GilReleasingDelete {
  void operator()(DataLoader* p) const {
    py::gil_scoped_release rel;  // the prefetch thread may need the GIL to finish a Python get()
    delete p;
  }
};

struct LoaderIter {
  DataLoader* loader;
  std::optional<DataLoader::Iterator> it;
};

}  // namespace

void init_data(py::module_& top) {
  py::module_ m = top.def_submodule("data", "Datasets, samplers and the DataLoader.");
  py::enum_<Split>(m, "Split").value("Train", Split::Train).value("Test", Split::Test);
  m.attr("kFashionMnistDir") = kFashionMnistDir;

  py::class_<Dataset, PyDataset, py::smart_holder>(m, "Dataset", R"doc(
An indexed collection of (input, target) examples. Subclass it in Python by defining size() and
get(index) -> (input, target) (tensors or NumPy arrays); the DataLoader's prefetch thread calls
them with the GIL taken.
)doc")
      .def(py::init<>())
      .def("size", &Dataset::size, "Number of examples (or indices per epoch for samplers).")
      .def("__len__", &Dataset::size)
      .def("get", [](const Dataset& d, int64_t i) { return example_to_py(d.get(i)); }, py::arg("index"), "Example `index` as (input, target).")
      .def("__getitem__", [](const Dataset& d, int64_t i) {
        if (i < 0) i += d.size();
        if (i < 0 || i >= d.size()) throw py::index_error("dataset index out of range");
        return example_to_py(d.get(i));
      })
      .def("get_batch", [](const Dataset& d, const std::vector<int64_t>& idx) {
        Example e;
        {
          py::gil_scoped_release rel;
          e = d.get_batch(idx);
        }
        return example_to_py(e);
      }, py::arg("indices"), "The examples at `indices`, stacked.");

  py::class_<TensorDataset, Dataset, py::smart_holder>(m, "TensorDataset",
                                                       "Example i is (inputs[i], targets[i]); NumPy arrays are shared, not copied.")
      .def(py::init([](const py::object& x, const py::object& y) { return std::make_shared<TensorDataset>(to_tensor(x), to_tensor(y)); }),
           py::arg("inputs"), py::arg("targets"))
      .def("inputs", &TensorDataset::inputs, "The inputs tensor (a handle, no copy).")
      .def("targets", &TensorDataset::targets, "The targets tensor (a handle, no copy).");
  py::class_<MnistDataset, TensorDataset, py::smart_holder>(m, "MnistDataset", "MNIST-layout IDX files as f32 [N,1,28,28] / i64 [N].")
      .def(py::init([](const std::string& dir, const py::object& split, bool normalize, float mean, float std, int64_t limit) {
             py::gil_scoped_release rel;
             return std::make_shared<MnistDataset>(dir, split_from(split), MnistOptions{normalize, mean, std, limit});
           }),
           py::arg("dir"), py::arg("split") = "train", py::arg("normalize") = true, py::arg("mean") = 0.2860f,
           py::arg("std") = 0.3530f, py::arg("limit") = 0);
  py::class_<FashionMNIST, MnistDataset, py::smart_holder>(m, "FashionMNIST", "Fashion-MNIST (ten classes of clothing).")
      .def(py::init([](const std::string& dir, const py::object& split, bool normalize, float mean, float std, int64_t limit) {
             Split s = split_from(split);
             py::gil_scoped_release rel;
             return std::make_shared<FashionMNIST>(dir, s, MnistOptions{normalize, mean, std, limit});
           }),
           py::arg("dir") = kFashionMnistDir, py::arg("split") = "train", py::arg("normalize") = true,
           py::arg("mean") = 0.2860f, py::arg("std") = 0.3530f, py::arg("limit") = 0)
      .def_static("class_names", [] {
        std::vector<std::string> v;
        for (const char* n : FashionMNIST::class_names()) v.emplace_back(n);
        return v;
      }, "The ten Fashion-MNIST class names.");
  m.def("gather_rows", [](const Tensor& t, const std::vector<int64_t>& idx) { return gather_rows(t, idx); }, py::arg("t"), py::arg("indices"), "Copies rows `indices` of `t` into a new contiguous tensor.");
  m.def("read_idx", [](const std::string& path, int64_t max_bytes) { return read_idx(path, {.max_bytes = max_bytes}); },
        py::arg("path"), py::arg("max_bytes") = int64_t{1} << 32, "Reads an IDX file (.gz or not) into a CPU tensor.");

  py::class_<Sampler>(m, "Sampler", "Produces the example indices of one epoch.")
      .def("indices", &Sampler::indices, "Indices of the current epoch, in visiting order.")
      .def("size", &Sampler::size, "Number of examples (or indices per epoch for samplers).")
      .def("__len__", &Sampler::size)
      .def("set_epoch", &Sampler::set_epoch, py::arg("epoch"), "Selects the epoch (reshuffles); call it at the start of every epoch.")
      .def("epoch", &Sampler::epoch, "The epoch set with set_epoch().");
  py::class_<SequentialSampler, Sampler>(m, "SequentialSampler", "0, 1, ..., n-1.").def(py::init<int64_t>(), py::arg("n"));
  py::class_<RandomSampler, Sampler>(m, "RandomSampler", "A permutation of 0..n-1 seeded with seed + epoch.").def(py::init<int64_t, uint64_t>(), py::arg("n"), py::arg("seed") = 0);
  py::class_<DistributedSampler, Sampler>(m, "DistributedSampler", R"doc(
Gives rank r of W ranks the indices perm[r], perm[r + W], ... of one permutation shared by all
ranks. DistributedSampler(n, world) with a ProcessGroup/Communicator, or DistributedSampler(n, rank, world_size).
)doc")
      .def(py::init([](int64_t n, const py::object& group_or_rank, std::optional<int> world_size, bool shuffle, uint64_t seed, bool drop_last) {
             DistributedSamplerOptions o{.shuffle = shuffle, .seed = seed, .drop_last = drop_last};
             if (py::isinstance<PyProcessGroup>(group_or_rank)) {
               auto g = group_or_rank.cast<const PyProcessGroup&>().get();
               return std::make_unique<DistributedSampler>(n, g.rank(), g.size(), o);
             }
             if (py::isinstance<comm::Communicator>(group_or_rank)) {
               auto& c = group_or_rank.cast<comm::Communicator&>();
               return std::make_unique<DistributedSampler>(n, c.rank(), c.size(), o);
             }
             KIRZL_CHECK(world_size.has_value(), "DistributedSampler: pass a process group, or rank and world_size");
             return std::make_unique<DistributedSampler>(n, group_or_rank.cast<int>(), *world_size, o);
           }),
           py::arg("n"), py::arg("group"), py::arg("world_size") = py::none(), py::kw_only(), py::arg("shuffle") = true,
           py::arg("seed") = 0, py::arg("drop_last") = false)
      .def("rank", &DistributedSampler::rank, "This sampler's rank.")
      .def("world_size", &DistributedSampler::world_size, "Number of ranks the data is split over.");

  py::class_<LoaderIter>(m, "_DataLoaderIterator")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", [](LoaderIter& s) {
        {
          py::gil_scoped_release rel;
          if (!s.it) s.it.emplace(s.loader->begin());
          else ++*s.it;
        }
        if (*s.it == s.loader->end()) throw py::stop_iteration();
        return example_to_py(**s.it);
      });

  py::class_<DataLoader, std::unique_ptr<DataLoader, GilReleasingDelete>>(m, "DataLoader", R"doc(
Batches of a dataset, assembled ahead by a background thread: `for x, y in loader: ...`.
Each iteration starts an epoch. The dataset (and sampler) are kept alive by the loader.
)doc")
      .def(py::init([](const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last, Sampler* sampler, int prefetch) {
             return std::unique_ptr<DataLoader, GilReleasingDelete>(new DataLoader(
                 ds, DataLoaderOptions{.batch_size = batch_size, .shuffle = shuffle, .seed = seed, .drop_last = drop_last,
                                       .sampler = sampler, .prefetch = prefetch}));
           }),
           py::arg("dataset"), py::arg("batch_size") = 1, py::arg("shuffle") = false, py::arg("seed") = 0,
           py::arg("drop_last") = false, py::arg("sampler").none(true) = py::none(), py::arg("prefetch") = 2, py::keep_alive<1, 2>(),
           py::keep_alive<1, 7>())
      .def("num_batches", &DataLoader::num_batches, "Batches per epoch.")
      .def("num_examples", &DataLoader::num_examples, "Examples per epoch (after the sampler and drop_last).")
      .def("__len__", &DataLoader::num_batches)
      .def("set_epoch", &DataLoader::set_epoch, py::arg("epoch"), "Selects the epoch (reshuffles); call it at the start of every epoch.")
      .def("__iter__", [](DataLoader& d) { return LoaderIter{&d, std::nullopt}; }, py::keep_alive<0, 1>());
}

}  // namespace kirzl::python
