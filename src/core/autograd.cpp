// The backward engine. See Note [engine order].
#include "kirzl/autograd.hpp"

#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "kernels/binary.h"

namespace kirzl {

namespace {
thread_local bool tls_grad_enabled = true;
// Non-null while a backward pass runs on this thread: where queue_callback() appends.
thread_local std::vector<std::function<void()>>* tls_final_callbacks = nullptr;
std::atomic<uint64_t> next_sequence_nr{0};
}  // namespace

bool grad_enabled() { return tls_grad_enabled; }
void set_grad_enabled(bool enabled) { tls_grad_enabled = enabled; }
NoGradGuard::NoGradGuard() : prev_(tls_grad_enabled) { tls_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { tls_grad_enabled = prev_; }

namespace autograd {

Node::Node() : sequence_nr_(next_sequence_nr++) {}

// Note [iterative graph teardown]: a node owns its inputs' nodes through next_edges, so dropping
// the last tensor of a long chain would destroy the chain recursively and overflow the stack.
// Instead, a dying node detaches the input nodes it alone owns and destroys them in a loop.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> stack;
  auto take_sole = [&stack](std::vector<Edge>& edges) {
    for (Edge& e : edges)
      if (e.fn && e.fn.use_count() == 1) stack.push_back(std::move(e.fn));
  };
  take_sole(next_edges_);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    take_sole(n->next_edges_);
  }
}

std::vector<std::pair<uint64_t, GradHook>>& Node::pre_hooks(uint32_t output_nr) {
  if (pre_hooks_.size() <= output_nr) pre_hooks_.resize(output_nr + 1);
  return pre_hooks_[output_nr];
}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>&& grad_outputs) {
  KIRZL_INTERNAL_ASSERT(fn_ != nullptr);
  GradContext ctx{grad_outputs, *this};
  return fn_(ctx);
}

void FunctionNode::release() {
  fn_ = nullptr;
  released_ = true;
}

namespace {

// Accumulates gradients into a leaf's .grad and then runs its post-accumulate-grad hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) {
    mutable_outputs().push_back({leaf_.shape(), leaf_.dtype(), leaf_.device()});
  }
  std::string name() const override { return "AccumulateGrad"; }
  bool is_accumulate_grad() const override { return true; }
  void release() override {}  // a leaf's accumulator outlives any one graph
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor& g = grads[0];
    if (!g.defined()) return {};
    auto& meta = leaf_.ensure_autograd_meta();
    for (auto& [handle, hook] : meta.leaf_grad_hooks) {
      Tensor replaced = hook(g);
      if (replaced.defined()) g = replaced;
    }
    if (meta.grad.defined()) {
      meta.grad.add_(g);  // in place: keeps views such as DDP bucket slots
    } else if (g.use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
               static_cast<size_t>(g.numel()) == g.storage().nbytes() / g.element_size()) {
      // The only handle to a fresh buffer: take it without copying. Anything shared (the same
      // gradient flowing to two leaves, a user's tensor) is copied so .grad never aliases.
      meta.grad = g.detach();
    } else {
      meta.grad = g.detach().clone();
    }
    for (auto& [handle, hook] : meta.post_accumulate_hooks) hook(leaf_);
    return {};
  }

 private:
  Tensor leaf_;
};

}  // namespace

Edge gradient_edge(const Tensor& t) {
  auto* meta = t.autograd_meta();
  if (!meta || !meta->requires_grad) return {};
  if (meta->grad_fn) return {meta->grad_fn, meta->output_nr};
  std::shared_ptr<Node> acc = meta->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    meta->grad_accumulator = acc;
  }
  return {acc, 0};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
// The safety net of Note [parameter gather overlap]: a parameter whose all-gather is in flight was
// read by an op, so the op computed with stale (or half-written) values.
[[noreturn]] void fail_gather_pending(const char* op, const Tensor& in) {
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": input ", in.describe(), " is a parameter whose all-gather after "
             "a sharded optimizer step (DistributedDataParallel with shard = optimizer or gradients) has not been "
             "waited for: it was read without calling the module that owns it, so its values are stale. Call child "
             "modules through operator() (child(x), not child.forward(x)), or call the owning module's "
             "run_forward_pre_hooks() before reading its parameters, or call ddp.synchronize_parameters() first, "
             "or set DDPOptions::overlap_parameter_gather = false");
}
}  // namespace

void record(const char* name, const std::vector<Tensor*>& outputs, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  auto& edges = node->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    if (!in.defined()) {
      edges.push_back(Edge{});
      continue;
    }
    const AutogradMeta* meta = in.autograd_meta();
    if (meta && meta->gather_pending) [[unlikely]]
      fail_gather_pending(name, in);
    edges.push_back(gradient_edge(in));
  }
  auto& metas = node->mutable_outputs();
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = *outputs[i];
    metas.push_back({out.shape(), out.dtype(), out.device()});
    if (!is_floating(out.dtype())) continue;  // integer outputs (argmax, indices) carry no gradient
    auto& m = out.ensure_autograd_meta();
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = i;
  }
}

// Note [engine order]: the engine first counts, for every node reachable from the roots, how
// many edges point at it; a node runs once all of them have delivered (or it has no pending
// producers). Among ready nodes, AccumulateGrad runs first (so leaf hooks, e.g. the DDP
// reducer's, fire as early as possible) and then the most recently created node. The traversal
// uses explicit stacks and a heap, never recursion, so a graph of any depth is safe.
namespace {

struct ReadyOrder {
  bool operator()(const Node* a, const Node* b) const {
    bool acc_a = a->is_accumulate_grad(), acc_b = b->is_accumulate_grad();
    if (acc_a != acc_b) return acc_b;  // AccumulateGrad has higher priority
    return a->sequence_nr() < b->sequence_nr();
  }
};

/// slot += g, as a new tensor (a gradient may be shared). Runs under NoGradGuard, so the add
/// kernel is called directly, with add's broadcasting and type promotion (core does not use ops).
void accumulate(Tensor& slot, const Tensor& g) {
  if (!g.defined()) return;
  if (!slot.defined()) {
    slot = g;
    return;
  }
  KIRZL_CHECK(slot.device() == g.device(), "backward: gradients ", slot.describe(), " and ", g.describe(),
              " of one tensor are on different devices");
  const DType dt = promote_types(slot.dtype(), g.dtype());
  Tensor sum = empty(broadcast_shapes(slot.shape(), g.shape(), "backward"), {.dtype = dt, .device = g.device()});
  kernels::binary(kernels::BinaryOp::Add, sum, slot.to(dt), g.to(dt));
  slot = sum;
}

// Runs the engine. When `capture` is non-null, gradients arriving at those edges are stored there
// instead of flowing further (autograd::grad); otherwise leaves accumulate into .grad.
void run_engine_pass(const std::vector<Edge>& root_edges, const std::vector<Tensor>& root_grads, bool retain_graph,
                     const std::vector<Edge>* capture, std::vector<Tensor>* captured);

void run_engine(const std::vector<Edge>& root_edges, const std::vector<Tensor>& root_grads, bool retain_graph,
                const std::vector<Edge>* capture, std::vector<Tensor>* captured) {
  std::vector<std::function<void()>> callbacks;
  auto* outer = tls_final_callbacks;
  tls_final_callbacks = &callbacks;
  try {
    run_engine_pass(root_edges, root_grads, retain_graph, capture, captured);
    NoGradGuard no_grad;
    // Callbacks may queue more callbacks; run until none are left.
    for (size_t i = 0; i < callbacks.size(); ++i) {
      auto fn = std::move(callbacks[i]);
      fn();
    }
  } catch (...) {
    tls_final_callbacks = outer;
    throw;
  }
  tls_final_callbacks = outer;
}

void run_engine_pass(const std::vector<Edge>& root_edges, const std::vector<Tensor>& root_grads, bool retain_graph,
                     const std::vector<Edge>* capture, std::vector<Tensor>* captured) {
  NoGradGuard no_grad;  // backward formulas record nothing

  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const Edge& e : root_edges)
    if (e.fn && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  std::unordered_set<Node*> capture_nodes;
  if (capture)
    for (const Edge& e : *capture)
      if (e.fn) capture_nodes.insert(e.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (capture_nodes.count(n)) continue;  // do not traverse past a captured node
    for (const Edge& e : n->next_edges()) {
      if (!e.fn) continue;
      ++deps[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep_alive;
  auto deliver = [&](const Edge& e, const Tensor& g) {
    auto& buf = buffers[e.fn.get()];
    if (buf.size() < e.fn->outputs().size()) buf.resize(std::max<size_t>(e.fn->outputs().size(), e.input_nr + 1));
    if (buf.size() <= e.input_nr) buf.resize(e.input_nr + 1);
    if (g.defined()) {
      const OutputMeta& om = e.fn->outputs()[e.input_nr];
      KIRZL_CHECK(g.shape() == om.shape, "backward: node '", e.fn->name(), "' received a gradient of shape ",
                  g.shape().str(), " for an output of shape ", om.shape.str());
    }
    accumulate(buf[e.input_nr], g);
    keep_alive.emplace(e.fn.get(), e.fn);
  };

  std::priority_queue<Node*, std::vector<Node*>, ReadyOrder> ready;
  for (size_t i = 0; i < root_edges.size(); ++i) {
    if (!root_edges[i].fn) continue;
    deliver(root_edges[i], root_grads[i]);
  }
  for (const Edge& e : root_edges)
    if (e.fn && deps[e.fn.get()] == 0) {
      deps[e.fn.get()] = -1;  // queued
      ready.push(e.fn.get());
    }

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(node->outputs().size());

    // Tensor hooks on this node's outputs may rewrite the incoming gradients.
    const auto& hooks = node->all_pre_hooks();
    for (size_t i = 0; i < hooks.size() && i < grads.size(); ++i)
      for (const auto& [handle, hook] : hooks[i])
        if (grads[i].defined()) {
          Tensor replaced = hook(grads[i]);
          if (replaced.defined()) grads[i] = replaced;
        }

    if (capture_nodes.count(node)) {
      for (size_t c = 0; c < capture->size(); ++c)
        if ((*capture)[c].fn.get() == node) accumulate((*captured)[c], grads[(*capture)[c].input_nr]);
      continue;
    }

    KIRZL_CHECK(!node->released(), "backward: trying to backward through the graph a second time: the saved tensors of '",
                node->name(), "' were freed after the previous backward (pass retain_graph=true to the first backward)");
    // Materialise zeros for outputs that got no gradient, so multi-output backward formulas see defined tensors.
    bool any_defined = false;
    for (auto& g : grads) any_defined = any_defined || g.defined();
    if (any_defined) {
      for (size_t i = 0; i < grads.size(); ++i)
        if (!grads[i].defined()) {
          const OutputMeta& om = node->outputs()[i];
          if (is_floating(om.dtype)) grads[i] = zeros(om.shape, {.dtype = om.dtype, .device = om.device});
        }
    }
    std::vector<Tensor> input_grads;
    if (any_defined) input_grads = node->apply(std::move(grads));
    if (!retain_graph) node->release();

    const auto& edges = node->next_edges();
    KIRZL_INTERNAL_ASSERT(input_grads.empty() || input_grads.size() == edges.size(), "node '", node->name(),
                          "' returned ", input_grads.size(), " gradients for ", edges.size(), " inputs");
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.fn) continue;
      if (i < input_grads.size() && input_grads[i].defined()) deliver(e, input_grads[i]);
      int& d = deps[e.fn.get()];
      if (--d == 0) {
        d = -1;
        keep_alive.emplace(e.fn.get(), e.fn);
        ready.push(e.fn.get());
      }
    }
  }
}

}  // namespace

void queue_callback(std::function<void()> fn) {
  KIRZL_CHECK(tls_final_callbacks != nullptr, "queue_callback: no backward pass is running on this thread");
  tls_final_callbacks->push_back(std::move(fn));
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  KIRZL_CHECK(grads.empty() || grads.size() == roots.size(), "backward: got ", grads.size(), " gradients for ",
              roots.size(), " tensors");
  std::vector<Edge> edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    KIRZL_CHECK(r.defined(), "backward: tensor ", i, " is undefined");
    KIRZL_CHECK(r.requires_grad(), "backward: ", r.describe(),
                " does not require grad and has no grad_fn (did any input have requires_grad set, and was grad mode on?)");
    Tensor g = i < grads.size() ? grads[i] : Tensor();
    if (!g.defined()) {
      KIRZL_CHECK(r.numel() == 1, "backward: a gradient must be given for non-scalar output ", r.describe(),
                  " (backward() without a gradient only works for one-element tensors)");
      g = ones_like(r);
    } else {
      KIRZL_CHECK(g.shape() == r.shape(), "backward: gradient ", g.describe(), " does not match output ", r.describe());
      KIRZL_CHECK(g.device() == r.device(), "backward: gradient ", g.describe(), " is not on the device of ", r.describe());
      if (g.dtype() != r.dtype()) g = g.to(r.dtype());
    }
    edges.push_back(gradient_edge(r));
    root_grads.push_back(g.detach());
  }
  run_engine(edges, root_grads, retain_graph, nullptr, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  std::vector<Edge> edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& r = outputs[i];
    KIRZL_CHECK(r.defined() && r.requires_grad(), "grad: output ", i, " (", r.describe(), ") does not require grad");
    Tensor g = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!g.defined()) {
      KIRZL_CHECK(r.numel() == 1, "grad: a gradient must be given for non-scalar output ", r.describe());
      g = ones_like(r);
    }
    edges.push_back(gradient_edge(r));
    root_grads.push_back(g.detach());
  }
  std::vector<Edge> capture;
  for (const Tensor& in : inputs) {
    KIRZL_CHECK(in.defined() && in.requires_grad(), "grad: input ", in.describe(), " does not require grad");
    capture.push_back(gradient_edge(in));
  }
  std::vector<Tensor> captured(inputs.size());
  run_engine(edges, root_grads, retain_graph, &capture, &captured);
  return captured;
}

}  // namespace autograd
}  // namespace kirzl
