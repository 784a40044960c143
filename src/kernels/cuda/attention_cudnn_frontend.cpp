// Causal attention through cuDNN's fused scaled-dot-product attention, built with the cuDNN
// frontend's graph API (cudnn_frontend::graph::Graph). The only file that includes the frontend.
//
// Note [cudnn sdpa]
// What runs: cuDNN's fused flash attention (tensor cores) for bf16/f16 q, k, v [B, H, T, D],
// causal, no dropout, scale 1/sqrt(D), f32 softmax statistics: the forward saves the output and
// one natural-log log-sum-exp per row (the flash kernels' lse, so either backward could use it),
// the backward recomputes the probabilities from them. Every tensor is given to cuDNN with its
// own strides (stride 1 in the head dim), so views are read and written in place.
// What is cached: a Plan per (device, dtype, B, H, T, D, scale, the strides of every tensor of
// the graph, direction): the validated graph, its operation graph, the execution plan cuDNN's
// heuristics (mode A) rank first among those that pass the support check, and its workspace
// size. Plans are built under one mutex (heuristics run once per shape) and kept for the life of
// the process, like conv_cudnn.cpp's. A call binds the thread's handle to the current stream,
// takes the workspace from stream_workspace and executes with a variant pack of data pointers.
// Support checks: cudnn_attention_static_reason (bf16/f16, D a multiple of 8 up to 256) first;
// then cudnn_attention_support builds the forward and backward graphs of the shape in the
// contiguous layout and returns cuDNN's own reason when validation, the support check or the plan
// build refuses (e.g. D > 128 on GPUs before sm_90, or a cuDNN without the engine). Strides do
// not change the answer as long as every non-unit stride is a multiple of 8 elements (16-byte
// rows), which D % 8 == 0 guarantees for the layouts kirzl passes; a graph of other strides that
// cuDNN still refuses is an Error{Unsupported} at its call, naming the op and the shapes.
// The backward asks for cuDNN's deterministic algorithm (kirzl's default: the same inputs give
// the same bits); where this cuDNN has none for the shape, it takes the non-deterministic one.
// The price: the frontend then keeps a dP workspace of B*H*T*T*2 bytes (GPT-2 124M at B=16,
// T=1024: 0.4 GB; PyTorch's default backward is the non-deterministic one and needs none), held
// by stream_workspace between steps. Its size is the workspace the plan reports; the GPU check's
// peak-memory comparison with PyTorch (issue #15) includes it.
// The fallback: causal_attention (ops/attention.cpp) uses this path under KIRZL_ATTENTION=auto
// when the build has it and both checks pass, else kirzl's flash kernels (f32 and the shapes
// cuDNN refuses); KIRZL_ATTENTION=cudnn makes a refusal an Error{Unsupported} with the reason.
// The qkv layout: causal_attention_qkv gives q, k, v as the three [B, H, T, D] views of one
// [B, T, 3C] projection (strides (T*3C, D, 3C, 1)), the output as the view of a [B, T, C] tensor
// (strides (T*C, D, C, 1): no transpose copy after), and the backward's dq, dk, dv as the three
// views of one [B, T, 3C] gradient, written by cuDNN in place: no split copies, no concatenation.
#include <cudnn_frontend.h>
#include <dlfcn.h>

#include <array>
#include <bit>
#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "kernels/attention_cudnn.h"
#include "kernels/cuda/cudnn_check.h"
#include "kernels/cuda/cudnn_handle.h"
#include "kernels/cuda/library_context.h"

// The frontend is compiled with NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING (CMakeLists.txt), so that
// NVRTC, which only its run-time-compiled engines use, is no link dependency of libkirzl. It then
// looks every cuDNN function up with dlsym in this handle: RTLD_DEFAULT searches the libraries
// already loaded, and libkirzl links cuDNN itself, so the frontend calls the very cuDNN that
// conv_cudnn.cpp does.
namespace cudnn_frontend {
void* cudnn_dlhandle = RTLD_DEFAULT;
}  // namespace cudnn_frontend

namespace kirzl::kernels::cuda {

namespace {

namespace fe = cudnn_frontend;
using TensorAttr = std::shared_ptr<fe::graph::Tensor_attributes>;
using Strides = std::array<int64_t, 4>;

// The variant pack's keys.
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };

struct Dims {
  int64_t B, H, T, D;
};

Strides strides_of(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }
Strides contiguous_strides(const Dims& d) { return {d.H * d.T * d.D, d.T * d.D, d.D, 1}; }

std::string describe(const char* op, const Dims& d, DType dt) {
  return detail::str_cat(op, " (cuDNN fused attention) of [B, H, T, D] = [", d.B, ", ", d.H, ", ", d.T, ", ", d.D,
                         "], ", dtype_name(dt));
}

// The strides of the graph's tensors, in Uid order from kQ (stats are always contiguous).
struct Layout {
  Strides q, k, v, o, dO, dq, dk, dv;
};

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t workspace = 0;
  std::string unsupported;  // why cuDNN refused the graph; empty when graph is usable
  bool deterministic = true;
};

using Key = std::array<int64_t, 8 + 8 * 4>;

// The scale is a constant of the graph, so it is part of the key (as its bits).
Key key_of(int device, DType dt, const Dims& d, bool backward, const Layout& l, double scale) {
  Key k{};
  size_t i = 0;
  for (int64_t v : {int64_t(device), int64_t(dt), d.B, d.H, d.T, d.D, int64_t(backward), std::bit_cast<int64_t>(scale)})
    k[i++] = v;
  for (const Strides* s : {&l.q, &l.k, &l.v, &l.o, &l.dO, &l.dq, &l.dk, &l.dv})
    for (int64_t v : *s) k[i++] = v;
  return k;
}

fe::DataType_t fe_type(DType dt) {
  return dt == DType::bf16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF;
}

TensorAttr input(fe::graph::Graph& g, const char* name, Uid uid, const Dims& d, const Strides& s) {
  return g.tensor(fe::graph::Tensor_attributes()
                      .set_name(name)
                      .set_uid(uid)
                      .set_dim({d.B, d.H, d.T, d.D})
                      .set_stride({s[0], s[1], s[2], s[3]}));
}

TensorAttr stats_tensor(fe::graph::Graph& g, const Dims& d) {
  return g.tensor(fe::graph::Tensor_attributes()
                      .set_name("stats")
                      .set_uid(kStats)
                      .set_dim({d.B, d.H, d.T, 1})
                      .set_stride({d.H * d.T, d.T, 1, 1})
                      .set_data_type(fe::DataType_t::FLOAT));
}

void set_output(const TensorAttr& t, Uid uid, const Dims& d, const Strides& s) {
  t->set_output(true).set_uid(uid).set_dim({d.B, d.H, d.T, d.D}).set_stride({s[0], s[1], s[2], s[3]});
}

// Runs the frontend's build steps; an empty string when the graph is ready, else the step and
// cuDNN's message.
std::string build_graph(fe::graph::Graph& g, cudnnHandle_t h, int64_t& workspace) {
  auto step = [](const char* what, fe::error_t e) -> std::string {
    if (e.is_good()) return {};
    return detail::str_cat(what, ": ", e.get_message(), " (frontend error ", static_cast<int>(e.get_code()), ")");
  };
  std::string why;
  if (!(why = step("validate", g.validate())).empty()) return why;
  if (!(why = step("build_operation_graph", g.build_operation_graph(h))).empty()) return why;
  if (!(why = step("create_execution_plans", g.create_execution_plans({fe::HeurMode_t::A}))).empty()) return why;
  if (!(why = step("check_support", g.check_support(h))).empty()) return why;
  if (!(why = step("build_plans", g.build_plans(h, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE))).empty()) return why;
  return step("get_workspace_size", g.get_workspace_size(workspace));
}

std::shared_ptr<fe::graph::Graph> new_graph(DType dt) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe_type(dt))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

std::unique_ptr<Plan> make_forward_plan(cudnnHandle_t h, DType dt, const Dims& d, const Layout& l, double scale) {
  auto p = std::make_unique<Plan>();
  p->graph = new_graph(dt);
  fe::graph::Graph& g = *p->graph;
  auto attrs = fe::graph::SDPA_attributes()
                   .set_name("causal_sdpa")
                   .set_generate_stats(true)
                   .set_causal_mask(true)
                   .set_attn_scale(static_cast<float>(scale));
  auto [o, stats] = g.sdpa(input(g, "q", kQ, d, l.q), input(g, "k", kK, d, l.k), input(g, "v", kV, d, l.v), attrs);
  set_output(o, kO, d, l.o);
  stats->set_output(true)
      .set_uid(kStats)
      .set_dim({d.B, d.H, d.T, 1})
      .set_stride({d.H * d.T, d.T, 1, 1})
      .set_data_type(fe::DataType_t::FLOAT);
  p->unsupported = build_graph(g, h, p->workspace);
  return p;
}

std::unique_ptr<Plan> make_backward_plan(cudnnHandle_t h, DType dt, const Dims& d, const Layout& l, double scale,
                                         bool deterministic) {
  auto p = std::make_unique<Plan>();
  p->graph = new_graph(dt);
  p->deterministic = deterministic;
  fe::graph::Graph& g = *p->graph;
  auto attrs = fe::graph::SDPA_backward_attributes()
                   .set_name("causal_sdpa_backward")
                   .set_causal_mask(true)
                   .set_deterministic_algorithm(deterministic)
                   .set_attn_scale(static_cast<float>(scale));
  auto [dq, dk, dv] = g.sdpa_backward(input(g, "q", kQ, d, l.q), input(g, "k", kK, d, l.k), input(g, "v", kV, d, l.v),
                                      input(g, "o", kO, d, l.o), input(g, "dO", kDO, d, l.dO), stats_tensor(g, d), attrs);
  set_output(dq, kDQ, d, l.dq);
  set_output(dk, kDK, d, l.dk);
  set_output(dv, kDV, d, l.dv);
  p->unsupported = build_graph(g, h, p->workspace);
  return p;
}

// The cached plan of one direction (see Note [cudnn sdpa]).
const Plan& plan_for(cudnnHandle_t h, int device, DType dt, const Dims& d, bool backward, const Layout& l,
                     double scale) {
  // Never destroyed: plans are used until the process ends (see library_context.h on why).
  static std::mutex* mu = new std::mutex;
  static auto* plans = new std::map<Key, std::unique_ptr<Plan>>;
  const Key key = key_of(device, dt, d, backward, l, scale);
  std::lock_guard lock(*mu);  // held while a plan is built: heuristics run once per shape
  auto it = plans->find(key);
  if (it == plans->end()) {
    // The frontend reports most failures as statuses, but throws (std::exception) on some, e.g.
    // when it cannot load a cuDNN sub-library: such a plan is recorded as unsupported with the
    // message, so that `auto` takes the flash kernels and `cudnn` raises an Error naming the op.
    auto guarded = [&](auto make) {
      try {
        return make();
      } catch (const std::exception& e) {
        auto failed = std::make_unique<Plan>();
        failed->unsupported = detail::str_cat("the cuDNN frontend threw: ", e.what());
        return failed;
      }
    };
    std::unique_ptr<Plan> p;
    if (!backward) {
      p = guarded([&] { return make_forward_plan(h, dt, d, l, scale); });
    } else {
      p = guarded([&] { return make_backward_plan(h, dt, d, l, scale, /*deterministic=*/true); });
      if (!p->unsupported.empty()) {
        std::unique_ptr<Plan> any = guarded([&] { return make_backward_plan(h, dt, d, l, scale, /*deterministic=*/false); });
        if (any->unsupported.empty()) p = std::move(any);
      }
    }
    it = plans->emplace(key, std::move(p)).first;
  }
  return *it->second;
}

Dims check_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  KIRZL_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), op,
              ": expected q, k, v of one shape [B, H, T, D], got ", q.describe(), ", ", k.describe(), ", ",
              v.describe());
  KIRZL_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), op, ": q, k, v must share one dtype, got ",
              q.describe(), ", ", k.describe(), ", ", v.describe());
  const std::string why = cudnn_attention_static_reason(q.dtype(), q.size(3));
  KIRZL_CHECK_CODE(why.empty(), ErrorCode::Unsupported, op, ": ", why);
  return Dims{q.size(0), q.size(1), q.size(2), q.size(3)};
}

// Each tensor on q's device and dtype, of q's shape, with unit stride in the head dim.
void check_like(const char* op, const Tensor& q, std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  for (auto& [name, t] : ts)
    KIRZL_CHECK(t->defined() && t->device() == q.device() && t->dtype() == q.dtype() && t->shape() == q.shape() &&
                    t->stride(3) == 1,
                op, ": ", name, " must be a ", dtype_name(q.dtype()), " ", q.device().str(),
                " tensor of q's shape with unit stride in the head dim, got ",
                t->defined() ? t->describe() : std::string("an undefined tensor"));
}

struct Call {
  cudnnHandle_t handle;
  cudaStream_t stream;
  int device;
};

Call bind(const Tensor& q) {
  const int device = q.device().index();
  KIRZL_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t stream = cuda_rt::current_stream(device);
  cudnnHandle_t h = cudnn_handle(device);
  KIRZL_CUDNN_CHECK(cudnnSetStream(h, stream));
  return {h, stream, device};
}

void execute(const char* op, const Dims& d, DType dt, const Call& c, const Plan& p,
             std::unordered_map<int64_t, void*>& pack) {
  KIRZL_CHECK_CODE(p.unsupported.empty(), ErrorCode::Unsupported, describe(op, d, dt),
                   ": cuDNN cannot run this graph: ", p.unsupported);
  Tensor ws = stream_workspace(c.device, c.stream, static_cast<size_t>(p.workspace));
  fe::error_t e;
  try {
    e = p.graph->execute(c.handle, pack, ws.defined() ? ws.data_ptr() : nullptr);
  } catch (const std::exception& x) {  // see plan_for: the frontend throws on some failures
    throw Error(ErrorCode::Cuda, detail::str_cat(describe(op, d, dt), ": the cuDNN frontend threw: ", x.what()));
  }
  KIRZL_CHECK_CODE(e.is_good(), ErrorCode::Cuda, describe(op, d, dt), ": execution failed: ", e.get_message(),
                   " (frontend error ", static_cast<int>(e.get_code()), ")");
}

std::string attention_support(const Tensor& q) {
  KIRZL_CHECK(q.dim() == 4, "cudnn_attention_support: expected q [B, H, T, D], got ", q.describe());
  const Dims d{q.size(0), q.size(1), q.size(2), q.size(3)};
  std::string why = cudnn_attention_static_reason(q.dtype(), d.D);
  if (!why.empty() || q.numel() == 0) return why;
  const Call c = bind(q);
  const Strides s = contiguous_strides(d);
  const Layout l{s, s, s, s, s, s, s, s};
  const double scale = 1.0 / std::sqrt(static_cast<double>(d.D));
  for (bool backward : {false, true}) {
    const Plan& p = plan_for(c.handle, c.device, q.dtype(), d, backward, l, scale);
    if (!p.unsupported.empty())
      return detail::str_cat("cuDNN refuses the ", backward ? "backward" : "forward", " of ",
                             describe("causal_attention", d, q.dtype()), ": ", p.unsupported);
  }
  return {};
}

void attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const char* op = "cudnn_attention_forward";
  const Dims d = check_dims(op, q, k, v);
  check_like(op, q, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}});
  KIRZL_CHECK(lse.defined() && lse.device() == q.device() && lse.is_contiguous() && lse.dtype() == DType::f32 &&
                  lse.numel() == d.B * d.H * d.T,
              op, ": lse must be contiguous f32 [B, H, T] on ", q.device().str(), ", got ", lse.describe());
  if (q.numel() == 0) return;
  const Call c = bind(q);
  const Strides none{};
  const Layout l{strides_of(q), strides_of(k), strides_of(v), strides_of(out), none, none, none, none};
  const Plan& p = plan_for(c.handle, c.device, q.dtype(), d, false, l, scale);
  std::unordered_map<int64_t, void*> pack{{kQ, q.data_ptr()},   {kK, k.data_ptr()},     {kV, v.data_ptr()},
                                          {kO, out.data_ptr()}, {kStats, lse.data_ptr()}};
  execute(op, d, q.dtype(), c, p, pack);
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out, const Tensor& lse,
                        const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const char* op = "cudnn_attention_backward";
  const Dims d = check_dims(op, q, k, v);
  check_like(op, q,
             {{"q", &q}, {"k", &k}, {"v", &v}, {"g", &g}, {"out", &out}, {"gq", &gq}, {"gk", &gk}, {"gv", &gv}});
  KIRZL_CHECK(lse.defined() && lse.device() == q.device() && lse.is_contiguous() && lse.dtype() == DType::f32 &&
                  lse.numel() == d.B * d.H * d.T,
              op, ": lse must be contiguous f32 [B, H, T] on ", q.device().str(), ", got ", lse.describe());
  if (q.numel() == 0) return;
  const Call c = bind(q);
  const Layout l{strides_of(q),  strides_of(k),  strides_of(v),  strides_of(out),
                 strides_of(g),  strides_of(gq), strides_of(gk), strides_of(gv)};
  const Plan& p = plan_for(c.handle, c.device, q.dtype(), d, true, l, scale);
  std::unordered_map<int64_t, void*> pack{{kQ, q.data_ptr()},     {kK, k.data_ptr()},   {kV, v.data_ptr()},
                                          {kO, out.data_ptr()},   {kDO, g.data_ptr()},  {kStats, lse.data_ptr()},
                                          {kDQ, gq.data_ptr()},   {kDK, gk.data_ptr()}, {kDV, gv.data_ptr()}};
  execute(op, d, q.dtype(), c, p, pack);
}

}  // namespace

void register_attention_cudnn_frontend_kernels() {
  KIRZL_REGISTER_KERNEL(cudnn_attention_support, DeviceType::CUDA, &attention_support);
  KIRZL_REGISTER_KERNEL(cudnn_attention_forward, DeviceType::CUDA, &attention_forward);
  KIRZL_REGISTER_KERNEL(cudnn_attention_backward, DeviceType::CUDA, &attention_backward);
}

}  // namespace kirzl::kernels::cuda
