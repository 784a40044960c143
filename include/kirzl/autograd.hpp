// Reverse-mode automatic differentiation: a dynamic tape of Nodes and the backward engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl {

/// While alive, ops on this thread record no graph (results have requires_grad false).
/// Grad mode is per thread; guards nest.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Whether ops on this thread record a graph (true unless a NoGradGuard is alive).
bool grad_enabled();
void set_grad_enabled(bool enabled);

namespace autograd {

class Node;

/// Where a gradient goes: input `input_nr` of `fn`. A null fn means "nowhere" (no grad needed).
struct Edge {
  std::shared_ptr<Node> fn;  ///< the node that receives the gradient, or null
  uint32_t input_nr = 0;  ///< which of fn's inputs it arrives as
  /// True when the edge leads somewhere.
  bool valid() const { return fn != nullptr; }
};

/// Shape, dtype and device of a node's output, kept so that the engine can materialise zeros for
/// an output that received no gradient.
struct OutputMeta {
  Shape shape;  ///< of the output
  DType dtype = DType::f32;  ///< of the output
  Device device;  ///< of the output
};

/// One recorded operation. apply() receives one gradient per output and returns one gradient per
/// input (undefined where none is needed). Nodes are created by ops; users only see them through
/// Tensor::grad_fn().
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  /// The op's name, for errors and debugging ("linear", "relu", ...).
  virtual std::string name() const = 0;
  /// True for the node that accumulates into a leaf's .grad; the engine runs those first.
  virtual bool is_accumulate_grad() const { return false; }
  /// Computes the gradients of the inputs from those of the outputs (see the class comment).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  /// Frees saved tensors after a backward pass without retain_graph.
  virtual void release() { released_ = true; }
  /// True once release() ran.
  /// True once release() ran: a further backward through this node fails.
  bool released() const { return released_; }

  /// Where each input's gradient goes, in input order.
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  /// Same, for building the graph (autograd::record).
  std::vector<Edge>& mutable_next_edges() { return next_edges_; }
  /// Shape, dtype and device of each output.
  const std::vector<OutputMeta>& outputs() const { return outputs_; }
  /// Same, for building the graph (autograd::record).
  std::vector<OutputMeta>& mutable_outputs() { return outputs_; }
  /// Creation order; the engine runs later nodes first when several are ready.
  uint64_t sequence_nr() const { return sequence_nr_; }
  /// True when input i's gradient is consumed by anything.
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }

  /// Hooks on the gradient of output `output_nr`, run before apply().
  std::vector<std::pair<uint64_t, GradHook>>& pre_hooks(uint32_t output_nr);
  /// The pre-hooks of every output (handle, hook), by output number.
  const std::vector<std::vector<std::pair<uint64_t, GradHook>>>& all_pre_hooks() const { return pre_hooks_; }

 protected:
  bool released_ = false;  ///< set by release()

 private:
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> outputs_;
  std::vector<std::vector<std::pair<uint64_t, GradHook>>> pre_hooks_;
  uint64_t sequence_nr_;
};

/// What a backward function sees: the gradients of the op's outputs and which inputs need one.
struct GradContext {
  const std::vector<Tensor>& grads;  ///< the gradients of the op's outputs (undefined where none arrived)
  const Node& node;  ///< the node being run
  /// The gradient of output `i`.
  const Tensor& grad(size_t i = 0) const { return grads[i]; }
  /// True when input `input` needs a gradient: skip the work otherwise.
  bool needs(size_t input) const { return node.needs_input_grad(input); }
};

/// Computes the input gradients of one op from its output gradients.
using BackwardFn = std::function<std::vector<Tensor>(const GradContext&)>;

/// A Node whose backward is a function object. Releasing destroys the function (and the tensors
/// it captured), so a second backward through it fails with a clear error.
class FunctionNode final : public Node {
 public:
  /// A node named `name` whose backward is `fn`.
  FunctionNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  /// The name given at construction.
  std::string name() const override { return name_; }
  /// Runs the backward function (the engine refuses a released node before it gets here).
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  void release() override;

 private:
  std::string name_;
  BackwardFn fn_;
};

/// Per-tensor autograd state (only for tensors that take part in autograd).
struct AutogradMeta {
  bool requires_grad = false;  ///< autograd tracks this tensor
  Tensor grad;  ///< the accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;  ///< the node that produced the tensor; null for leaves
  uint32_t output_nr = 0;  ///< which output of grad_fn the tensor is
  std::weak_ptr<Node> grad_accumulator;  ///< leaves only: the node that adds into grad, created on first use
  std::vector<std::pair<uint64_t, GradHook>> leaf_grad_hooks;  ///< leaves: hooks run before accumulation (handle, hook)
  std::vector<std::pair<uint64_t, PostAccumulateGradHook>> post_accumulate_hooks;  ///< leaves: hooks run after accumulation (handle, hook)
  /// Leaves: the tensor's values are still being written by a collective (a sharded DDP's
  /// parameter all-gather that its forward has not waited for yet): record() refuses it as an
  /// input (Note [parameter gather overlap]). Set and cleared by DistributedDataParallel.
  bool gather_pending = false;
};

/// True when grad mode is on and any of `inputs` requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

/// Records an op: `outputs` get a FunctionNode named `name` with `backward` as grad_fn, connected
/// to `inputs` (undefined inputs are allowed and receive nothing). Does nothing unless
/// any_requires_grad(inputs). Tensors captured by `backward` should be detach()ed.
/// Error{InvalidArgument} when an input is marked AutogradMeta::gather_pending (a parameter read
/// before its all-gather was waited for).
void record(const char* name, const std::vector<Tensor*>& outputs, const std::vector<Tensor>& inputs,
            BackwardFn backward);
inline void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward) {
  record(name, std::vector<Tensor*>{&output}, inputs, std::move(backward));
}

/// The edge a gradient for `t` must flow into: its grad_fn, its leaf accumulator, or none.
Edge gradient_edge(const Tensor& t);

/// Runs the backward pass from `roots` with their `grads` (undefined: ones for one-element roots).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph = false);

/// Queues `fn` to run on this thread when the backward pass currently executing on it finishes
/// (after every node and hook, before backward() returns). Only valid inside a backward pass
/// (e.g. from a hook); throws Error{InvalidArgument} otherwise. If a callback throws, the
/// remaining ones are skipped and the exception propagates out of backward(). The data-parallel
/// reducer uses it to wait for its last buckets.
void queue_callback(std::function<void()> fn);

/// d(outputs)/d(inputs) without touching any `.grad`: returns one gradient per input (undefined
/// where the input does not influence the outputs).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false);

}  // namespace autograd
}  // namespace kirzl
