"""
kirzl's C++ core (use the `kirzl` package).
"""
from __future__ import annotations
import collections.abc
import numpy
import typing
from . import cuda
from . import autograd
from . import comm
from . import nn
from . import models
from . import optim
from . import amp
from . import data
from . import io
from . import profiler
__all__: list[str] = ['BucketInfo', 'CommTimeoutError', 'CudaError', 'DDPStepStats', 'DType', 'Device', 'DeviceType', 'DistributedDataParallel', 'Error', 'ErrorCode', 'Generator', 'GeneratorScope', 'InternalError', 'InvalidArgumentError', 'IoError', 'MpiError', 'NcclError', 'Node', 'Tensor', 'UnsupportedError', 'abs', 'add', 'all_gather', 'all_reduce', 'amp', 'arange', 'argmax', 'argmin', 'autograd', 'avg_pool2d', 'barrier', 'batch_norm', 'bf16', 'bfloat16', 'bmm', 'broadcast', 'broadcast_shapes', 'cat', 'causal_attention', 'causal_attention_qkv', 'chunk', 'clamp', 'comm', 'conv2d', 'cross_entropy', 'cuda', 'data', 'default_generator', 'div', 'dropout', 'dtype_size', 'embedding', 'empty', 'empty_like', 'eq', 'exp', 'f16', 'f32', 'f64', 'float16', 'float32', 'float64', 'from_dlpack', 'from_numpy', 'full', 'full_like', 'ge', 'gelu', 'get_num_threads', 'grad_enabled', 'gt', 'has_cuda', 'has_mpi', 'i32', 'i64', 'init', 'int32', 'int64', 'io', 'is_grad_enabled', 'layer_norm', 'le', 'linear', 'log', 'log_softmax', 'lt', 'manual_seed', 'masked_fill', 'matmul', 'max', 'max_pool2d', 'maximum', 'mean', 'min', 'minimum', 'models', 'mse_loss', 'mul', 'ne', 'neg', 'nn', 'normal', 'ones', 'ones_like', 'optim', 'pow', 'profiler', 'promote_types', 'rand', 'randint', 'randn', 'randperm', 'rank', 'rdiv', 'reduce_scatter', 'relu', 'rsqrt', 'rsub', 'scalar_tensor', 'set_grad_enabled', 'set_num_threads', 'sigmoid', 'softmax', 'split', 'sqrt', 'stack', 'sub', 'sum', 'sum_to', 'tanh', 'u16', 'u8', 'uint16', 'uint8', 'uniform', 'var', 'where', 'world_size', 'zeros', 'zeros_like']
class Error(Exception):
    code: ErrorCode
    message: str
class InvalidArgumentError(Error, ValueError): ...
class UnsupportedError(Error, NotImplementedError): ...
class CudaError(Error, RuntimeError): ...
class NcclError(Error, RuntimeError): ...
class MpiError(Error, RuntimeError): ...
class CommTimeoutError(Error, TimeoutError): ...
class IoError(Error, OSError): ...
class InternalError(Error, RuntimeError): ...
class ErrorCode:
    """
    What kind of failure a kirzl.Error reports.
    
    Members:
    
      InvalidArgument
    
      Unsupported
    
      Cuda
    
      Nccl
    
      Mpi
    
      Timeout
    
      Io
    
      Internal
    """
    Cuda: typing.ClassVar[ErrorCode]
    Internal: typing.ClassVar[ErrorCode]
    InvalidArgument: typing.ClassVar[ErrorCode]
    Io: typing.ClassVar[ErrorCode]
    Mpi: typing.ClassVar[ErrorCode]
    Nccl: typing.ClassVar[ErrorCode]
    Timeout: typing.ClassVar[ErrorCode]
    Unsupported: typing.ClassVar[ErrorCode]
    __members__: typing.ClassVar[dict[str, ErrorCode]]
    @typing.overload
    def __eq__(self, other: ErrorCode) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: ErrorCode) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class DType:
    """
    Element type of a tensor. Also exported as kirzl.f32, kirzl.float32, ...
    
    Members:
    
      f32
    
      f64
    
      bf16
    
      f16
    
      i32
    
      i64
    
      u8
    
      u16
    """
    __members__: typing.ClassVar[dict[str, DType]]
    bf16: typing.ClassVar[DType]
    f16: typing.ClassVar[DType]
    f32: typing.ClassVar[DType]
    f64: typing.ClassVar[DType]
    i32: typing.ClassVar[DType]
    i64: typing.ClassVar[DType]
    u16: typing.ClassVar[DType]
    u8: typing.ClassVar[DType]
    @typing.overload
    def __eq__(self, other: DType) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: DType) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def is_floating_point(self) -> bool:
        ...
    @property
    def itemsize(self) -> int:
        """
        Bytes per element.
        """
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class DeviceType:
    """
    Members:
    
      CPU
    
      CUDA
    """
    CPU: typing.ClassVar[DeviceType]
    CUDA: typing.ClassVar[DeviceType]
    __members__: typing.ClassVar[dict[str, DeviceType]]
    @typing.overload
    def __eq__(self, other: DeviceType) -> bool:
        ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool:
        ...
    def __getstate__(self) -> int:
        ...
    def __hash__(self) -> int:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __int__(self) -> int:
        ...
    @typing.overload
    def __ne__(self, other: DeviceType) -> bool:
        ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool:
        ...
    def __repr__(self) -> str:
        ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def __str__(self) -> str:
        ...
    @property
    def name(self) -> str:
        ...
    @property
    def value(self) -> int:
        ...
class Device:
    """
    A device: the CPU or CUDA device n.
    """
    def __eq__(self, arg0: typing.Any) -> bool:
        ...
    def __hash__(self) -> int:
        ...
    @typing.overload
    def __init__(self, spec: str) -> None:
        """
        Parses 'cpu', 'cuda' or 'cuda:N'.
        """
    @typing.overload
    def __init__(self, type: DeviceType, index: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __str__(self) -> str:
        ...
    @property
    def index(self) -> int:
        ...
    @property
    def is_cpu(self) -> bool:
        ...
    @property
    def is_cuda(self) -> bool:
        ...
    @property
    def type(self) -> DeviceType:
        ...
class Generator:
    """
    A seeded counter-based (Philox) random generator. Thread-safe.
    """
    def __init__(self, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def manual_seed(self, seed: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Re-seeds this generator (and resets its stream).
        """
    @property
    def offset(self) -> int:
        ...
    @offset.setter
    def offset(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def seed(self) -> int:
        ...
class GeneratorScope:
    """
    Makes a generator the calling thread's default (used by rand/randn/dropout/initialisation and
    saved by checkpoints) within a `with` block, so that ranks run as threads
    (kirzl.comm.make_in_process_group) draw as separate processes would:
    
        def rank_main(r, comm):
            with kirzl.GeneratorScope(0):   # a fresh generator seeded 0, as in a new process
                ...
    
    GeneratorScope(seed) makes a new Generator; GeneratorScope(generator) installs the one given.
    `as` binds the installed Generator. Blocks nest; other threads are unaffected.
    """
    def __enter__(self) -> typing.Any:
        ...
    def __exit__(self, *args) -> None:
        ...
    @typing.overload
    def __init__(self, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    @typing.overload
    def __init__(self, generator: typing.Any) -> None:
        ...
class Tensor:
    """
    An n-dimensional strided view of typed memory with autograd state.
    
    A Tensor is a handle: assigning it, or getting it back from C++ (e.g. model.parameters()),
    shares the same data and autograd state. Views (slicing, reshape, transpose) share storage.
    np.asarray(t) / t.numpy() share a CPU tensor's memory (buffer protocol); kirzl.tensor(ndarray)
    shares the array's memory where dtype and layout allow (see kirzl.from_numpy).
    """
    __array_priority__: typing.ClassVar[int] = 1000
    __array_ufunc__ = None
    def __abs__(self) -> Tensor:
        ...
    def __add__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __array__(self, dtype: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        ...
    def __bool__(self) -> bool:
        ...
    def __dlpack__(self, *, stream: typing.Any = None, max_version: typing.Any = None, dl_device: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        """
        A DLPack capsule sharing this tensor's memory (zero-copy; a copy with copy=True).
        
        stream: where the consumer will use a CUDA tensor. None (the legacy default stream is assumed), 1 (legacy default stream), 2 (per-thread default stream) or a cudaStream_t as an int > 2: that stream is made to wait, on the device, for kirzl's pending work on the tensor (the host does not block). -1: no synchronisation. 0 and other negative values raise InvalidArgumentError (a ValueError), a non-int TypeError. A CPU tensor needs no synchronisation and ignores a valid stream.
        """
    def __dlpack_device__(self) -> tuple[int, int]:
        ...
    def __eq__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __float__(self) -> float:
        ...
    def __ge__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __getitem__(self, arg0: typing.Any) -> Tensor:
        ...
    def __gt__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __hash__(self) -> int:
        ...
    def __iadd__(self, arg0: typing.Any) -> Tensor:
        ...
    def __imul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __index__(self) -> int:
        ...
    def __init__(self, data: typing.Any) -> None:
        """
        Same as kirzl.tensor(data): shares NumPy/DLPack memory when possible.
        """
    def __int__(self) -> int:
        ...
    def __isub__(self, arg0: typing.Any) -> Tensor:
        ...
    def __iter__(self) -> collections.abc.Iterator:
        ...
    def __le__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __len__(self) -> int:
        ...
    def __lt__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __matmul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __mul__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __ne__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __neg__(self) -> Tensor:
        ...
    def __pow__(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
        ...
    def __radd__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __repr__(self) -> str:
        ...
    def __rmatmul__(self, arg0: typing.Any) -> Tensor:
        ...
    def __rmul__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __rsub__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __rtruediv__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __setitem__(self, arg0: typing.Any, arg1: typing.Any) -> None:
        ...
    def __str__(self) -> str:
        ...
    def __sub__(self, arg0: typing.Any) -> typing.Any:
        ...
    def __truediv__(self, arg0: typing.Any) -> typing.Any:
        ...
    def abs(self) -> Tensor:
        """
        |x|.
        """
    def add_(self, other: typing.Any, alpha: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> Tensor:
        """
        self += alpha * other in place.
        """
    def argmax(self, dim: typing.SupportsInt | typing.SupportsIndex, keepdim: bool = False) -> Tensor:
        """
        Index (i64) of the first largest element along `dim`.
        """
    def argmin(self, dim: typing.SupportsInt | typing.SupportsIndex, keepdim: bool = False) -> Tensor:
        """
        Index (i64) of the first smallest element along `dim`.
        """
    def backward(self, gradient: typing.Any = None, retain_graph: bool = False) -> None:
        """
        Runs backward from this tensor (one element unless `gradient` is given). Releases the GIL.
        """
    def clamp(self, min: typing.SupportsFloat | typing.SupportsIndex | None = None, max: typing.SupportsFloat | typing.SupportsIndex | None = None) -> Tensor:
        """
        Limits every element to [min, max] (either may be None).
        """
    def clone(self) -> Tensor:
        """
        A contiguous copy with its own storage (differentiable).
        """
    def contiguous(self) -> Tensor:
        """
        This tensor when contiguous, else a contiguous copy (differentiable).
        """
    def copy_(self, src: typing.Any) -> Tensor:
        """
        Copies `src` (tensor, NumPy array or number; broadcast, any dtype/device) into this tensor in place.
        """
    def cpu(self) -> Tensor:
        """
        This tensor on the CPU (a copy for CUDA tensors).
        """
    def data_ptr(self) -> int:
        """
        Address of element [0, ..., 0].
        """
    def describe(self) -> str:
        """
        'f32[2, 3] on cpu', as used in error messages.
        """
    def detach(self) -> Tensor:
        """
        Same data, no autograd history, requires_grad False.
        """
    def dim(self) -> int:
        """
        Number of dimensions.
        """
    def element_size(self) -> int:
        """
        Bytes per element.
        """
    def exp(self) -> Tensor:
        """
        e ** x.
        """
    def expand(self, *args) -> Tensor:
        """
        Broadcasts size-1 dimensions to `shape` with stride 0 (a view; -1 keeps a size).
        """
    def fill_(self, value: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
        """
        Fills with `value` in place; returns self.
        """
    def flatten(self, start_dim: typing.SupportsInt | typing.SupportsIndex = 0, end_dim: typing.SupportsInt | typing.SupportsIndex = -1) -> Tensor:
        """
        Merges dims start_dim..end_dim into one (a view when contiguous).
        """
    def gelu(self, approximate: str = 'none') -> Tensor:
        """
        GELU: exact (erf) or 'tanh' approximation.
        """
    def is_contiguous(self) -> bool:
        """
        True when the elements are laid out row-major without gaps.
        """
    def is_same(self, other: Tensor) -> bool:
        """
        True when both handles are the same tensor object.
        """
    def item(self) -> typing.Any:
        """
        The single element as a Python float or int.
        """
    def log(self) -> Tensor:
        """
        Natural logarithm.
        """
    def log_softmax(self, dim: typing.SupportsInt | typing.SupportsIndex = -1) -> Tensor:
        """
        Log-softmax along `dim`.
        """
    def matmul(self, other: Tensor) -> Tensor:
        """
        NumPy matmul (same floating dtype for both operands).
        """
    def max(self, dim: typing.SupportsInt | typing.SupportsIndex | None = None, keepdim: bool = False) -> Tensor:
        """
        Largest element (over dim when given).
        """
    def mean(self, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
        """
        Mean over dims (all when None).
        """
    def min(self, dim: typing.SupportsInt | typing.SupportsIndex | None = None, keepdim: bool = False) -> Tensor:
        """
        Smallest element (over dim when given).
        """
    def mul_(self, value: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
        """
        self *= value in place.
        """
    def narrow(self, dim: typing.SupportsInt | typing.SupportsIndex, start: typing.SupportsInt | typing.SupportsIndex, length: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
        """
        `length` elements from `start` along `dim` (a view).
        """
    def neg(self) -> Tensor:
        """
        -x.
        """
    def numel(self) -> int:
        """
        Number of elements.
        """
    def numpy(self) -> typing.Any:
        """
        A NumPy array sharing this CPU tensor's memory (CUDA tensors are copied to the host; bf16 raises).
        """
    def permute(self, *args) -> Tensor:
        """
        Reorders the dimensions (a view).
        """
    def pow(self, exponent: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
        """
        x ** exponent.
        """
    def register_hook(self, hook: collections.abc.Callable) -> int:
        """
        hook(grad) -> Tensor | None, run when a gradient flows into this tensor; returns a handle.
        """
    def register_post_accumulate_grad_hook(self, hook: collections.abc.Callable) -> int:
        """
        hook(leaf) run after this leaf's .grad is accumulated; returns a handle.
        """
    def relu(self) -> Tensor:
        """
        max(x, 0).
        """
    def remove_hook(self, handle: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        Removes a hook registered on this tensor; False if the handle was not found.
        """
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """
        Marks a leaf as needing a gradient (floating dtypes only); returns self.
        """
    def reshape(self, *args) -> Tensor:
        """
        view() when the layout allows it, else a contiguous copy.
        """
    def rsqrt(self) -> Tensor:
        """
        1 / sqrt(x).
        """
    def select(self, dim: typing.SupportsInt | typing.SupportsIndex, index: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
        """
        Index `index` of `dim`, removing that dimension (a view).
        """
    def set_data(self, src: Tensor) -> None:
        """
        Makes this tensor refer to `src`'s data, keeping its autograd identity (like Module.to).
        """
    def sigmoid(self) -> Tensor:
        """
        1 / (1 + exp(-x)).
        """
    def size(self, dim: typing.SupportsInt | typing.SupportsIndex | None = None) -> typing.Any:
        """
        Extent of `dim`, or the shape when dim is None.
        """
    def slice(self, dim: typing.SupportsInt | typing.SupportsIndex, start: typing.SupportsInt | typing.SupportsIndex, end: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex = 1) -> Tensor:
        """
        Elements start, start+step, ... < end along `dim` (a view; Python slice rules).
        """
    def softmax(self, dim: typing.SupportsInt | typing.SupportsIndex = -1) -> Tensor:
        """
        Softmax along `dim` (max-subtracted).
        """
    def sqrt(self) -> Tensor:
        """
        Square root.
        """
    def squeeze(self, dim: typing.SupportsInt | typing.SupportsIndex | None = None) -> Tensor:
        """
        Removes size-1 dimensions (all, or `dim`).
        """
    def str(self) -> str:
        """
        The NumPy-like printout (same as repr).
        """
    def stride(self, dim: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Stride of `dim` in elements.
        """
    def sum(self, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
        """
        Sum over dims (all when None).
        """
    def t(self) -> Tensor:
        """
        Transpose of a 2-D tensor (a view).
        """
    def tanh(self) -> Tensor:
        """
        Hyperbolic tangent.
        """
    def to(self, target: typing.Any = None, *, dtype: typing.Any = None, device: typing.Any = None) -> Tensor:
        """
        Converted copy on another device and/or dtype (this tensor when nothing changes).
        """
    def tolist(self) -> typing.Any:
        """
        The elements as nested Python lists (copies).
        """
    def transpose(self, dim0: typing.SupportsInt | typing.SupportsIndex, dim1: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
        """
        Swaps two dimensions (a view).
        """
    def unsqueeze(self, dim: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
        """
        Inserts a size-1 dimension at `dim`.
        """
    def use_count(self) -> int:
        """
        Number of handles to this tensor object.
        """
    def var(self, dim: typing.Any = None, correction: typing.SupportsInt | typing.SupportsIndex = 1, keepdim: bool = False) -> Tensor:
        """
        Variance over dims, dividing by N - correction (1: unbiased).
        """
    def view(self, *args) -> Tensor:
        """
        Same elements in a new shape (one extent may be -1); shares storage. Needs a viewable layout.
        """
    def zero_(self) -> Tensor:
        """
        Fills with zeros in place; returns self.
        """
    @property
    def T(self) -> Tensor:
        ...
    @property
    def defined(self) -> bool:
        ...
    @property
    def device(self) -> Device:
        ...
    @property
    def dtype(self) -> DType:
        ...
    @property
    def grad(self) -> typing.Any:
        """
        Accumulated gradient of a leaf, or None.
        """
    @grad.setter
    def grad(self, arg1: typing.Any) -> None:
        ...
    @property
    def grad_fn(self) -> Node:
        """
        The Node that produced this tensor (None for leaves).
        """
    @property
    def is_leaf(self) -> bool:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def ndim(self) -> int:
        ...
    @property
    def offset(self) -> int:
        """
        Storage offset in elements.
        """
    @property
    def output_nr(self) -> int:
        ...
    @property
    def requires_grad(self) -> bool:
        """
        Whether gradients flow into this tensor. Settable on leaves (floating dtypes only).
        """
    @requires_grad.setter
    def requires_grad(self, arg1: bool) -> None:
        ...
    @property
    def shape(self) -> tuple:
        """
        Extents as a tuple.
        """
    @property
    def strides(self) -> tuple:
        """
        Strides in elements (NumPy's are in bytes).
        """
class Node:
    """
    One recorded operation of the autograd graph.
    """
    def __repr__(self) -> str:
        ...
    def name(self) -> str:
        """
        Name of the operation, e.g. 'MulBackward'.
        """
    @property
    def next_functions(self) -> list:
        ...
    @property
    def sequence_nr(self) -> int:
        ...
class BucketInfo:
    """
    One gradient bucket of DistributedDataParallel: index, parameter names, bytes, dtype, tag.
    """
    @property
    def bytes(self) -> int:
        ...
    @property
    def dtype(self) -> DType:
        ...
    @property
    def index(self) -> int:
        ...
    @property
    def param_names(self) -> list[str]:
        ...
    @property
    def tag(self) -> str:
        ...
class DDPStepStats:
    """
    Communication figures of the last synchronised backward (ms).
    """
    @property
    def backward_ms(self) -> float:
        ...
    @property
    def buckets(self) -> int:
        ...
    @property
    def comm_exposed_ms(self) -> float:
        ...
    @property
    def comm_hidden_ms(self) -> float:
        ...
    @property
    def comm_ms(self) -> float:
        ...
    @property
    def first_launch_ms(self) -> float:
        ...
    @property
    def forward_ms(self) -> float:
        """
        The last forward, waits included.
        """
    @property
    def gather_wait_ms(self) -> float:
        """
        Sharded: how long the last forward waited for the parameters' all-gathers.
        """
class _NoSync:
    def __enter__(self) -> None:
        ...
    def __exit__(self, *args) -> bool:
        ...
class _TraceScope:
    def __enter__(self) -> None:
        ...
    def __exit__(self, *args) -> bool:
        ...
class DistributedDataParallel:
    """
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
    """
    def __call__(self, x: typing.Any) -> Tensor:
        """
        Same as forward(x).
        """
    def __init__(self, *args, **kwargs):
        """
        __init__(self: kirzl._C.DistributedDataParallel, module: kirzl._C.nn.Module, group: object | None = None, *, bucket_cap_mb: typing.SupportsFloat | typing.SupportsIndex = 25.0, first_bucket_cap_mb: typing.SupportsFloat | typing.SupportsIndex = 1.0, find_unused_parameters: bool = False, broadcast_buffers: bool = True, overlap: bool = True, timeout: object | None = None, comm_hook: str = 'allreduce', timeline_path: str = '<env>', shard: str = 'none', overlap_parameter_gather: bool = True) -> None
        """
    def buckets(self) -> list[BucketInfo]:
        """
        The gradient buckets (reverse registration order).
        """
    def clip_grad_norm_(self, max_norm: typing.SupportsFloat | typing.SupportsIndex, norm_type: typing.SupportsFloat | typing.SupportsIndex = 2.0, error_if_nonfinite: bool = False) -> Tensor:
        """
        Clips the gradients the optimizer will read to a global norm of max_norm (over every rank's shard when sharded: a collective); returns the norm before clipping as a 0-d f32 tensor.
        """
    def close(self) -> None:
        """
        Destroys the reducer now (writes the timeline); later use raises.
        """
    def communicator(self) -> comm.Communicator:
        """
        The communicator (shared).
        """
    def forward(self, x: typing.Any) -> Tensor:
        """
        Runs the module's forward (GIL released), preparing the reducer for the backward that follows.
        """
    def join(self, has_batch: bool) -> bool:
        """
        Uneven data: True while every rank still has a batch.
        """
    def last_step_stats(self) -> DDPStepStats:
        """
        Communication figures of the last synchronised backward.
        """
    def make_optimizer(self, optimizer_class: typing.Any, params: typing.Any = None, **kwargs) -> typing.Any:
        """
        optimizer_class(<this rank's shard of params>, **options), tied to this DDP: an optimizer over its own shard when sharded, over params (default: the trainable parameters) when not. params as for the optimizers: tensors, or parameter-group dicts.
        """
    def module(self) -> nn.Module:
        """
        The wrapped module.
        """
    def no_sync(self) -> _NoSync:
        """
        Context manager: backward passes inside accumulate gradients locally without communicating.
        """
    def synchronize_parameters(self) -> None:
        """
        Waits for the parameters' all-gather after a sharded optimizer's step (forward() does it).
        """
    def trace(self, name: str) -> _TraceScope:
        """
        Context manager recording a user span in the timeline.
        """
    def trainable_parameters(self) -> list[Tensor]:
        """
        The module's parameters that require grad, in registration order.
        """
    def write_timeline(self) -> None:
        """
        Writes the timeline now.
        """
def _to_tensor(data: typing.Any) -> Tensor:
    ...
def abs(x: Tensor) -> Tensor:
    """
    |x|.
    """
@typing.overload
def add(a: Tensor, b: Tensor) -> Tensor:
    """
    a + b with broadcasting and dtype promotion.
    """
@typing.overload
def add(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    ...
@typing.overload
def add(a: typing.Any, b: typing.Any) -> Tensor:
    ...
def all_gather(output: typing.Any, input: typing.Any, group: typing.Any = None, timeout: typing.Any = None, async_op: bool = False) -> typing.Any:
    """
    output (world_size * input.numel() elements) receives every rank's input; returns output.
    """
def all_reduce(x: typing.Any, op: typing.Any = 'sum', group: typing.Any = None, timeout: typing.Any = None, async_op: bool = False) -> typing.Any:
    """
    Reduces x over all ranks in place (kirzl Tensor, DLPack object or writeable C-contiguous NumPy array; no copy) and returns x (or a Work with async_op=True).
    """
def arange(start: typing.SupportsFloat | typing.SupportsIndex, end: typing.SupportsFloat | typing.SupportsIndex | None = None, step: typing.SupportsFloat | typing.SupportsIndex = 1.0, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    [start, end) with step; i64 unless dtype says otherwise.
    """
def argmax(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex, keepdim: bool = False) -> Tensor:
    """
    Index (i64) of the first largest element along `dim`.
    """
def argmin(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex, keepdim: bool = False) -> Tensor:
    """
    Index (i64) of the first smallest element along `dim`.
    """
def avg_pool2d(x: Tensor, kernel_size: typing.Any = 2, stride: typing.Any = None, padding: typing.Any = 0, count_include_pad: bool = True) -> Tensor:
    """
    Average pooling.
    """
def barrier(group: typing.Any = None, timeout: typing.Any = None) -> None:
    """
    Returns when every rank has reached it.
    """
def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False, momentum: typing.SupportsFloat | typing.SupportsIndex = 0.1, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05) -> Tensor:
    """
    Batch normalisation of [N, C, ...]: batch statistics (updating the running ones) when training, else the running ones.
    """
def bmm(a: Tensor, b: Tensor) -> Tensor:
    """
    Batched product of [B, n, k] and [B, k, m].
    """
def broadcast(x: typing.Any, root: typing.SupportsInt | typing.SupportsIndex = 0, group: typing.Any = None, timeout: typing.Any = None, async_op: bool = False) -> typing.Any:
    """
    Copies root's x into every rank's x, in place; returns x.
    """
def broadcast_shapes(a: typing.Any, b: typing.Any) -> tuple:
    """
    Broadcast shape of a and b (NumPy rules).
    """
def cat(tensors: collections.abc.Sequence[Tensor], dim: typing.SupportsInt | typing.SupportsIndex = 0) -> Tensor:
    """
    Concatenates along an existing dim.
    """
def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """
    Causal scaled-dot-product attention of [..., T, D] tensors.
    """
def causal_attention_qkv(qkv: Tensor, n_head: typing.SupportsInt | typing.SupportsIndex) -> Tensor:
    """
    Causal self-attention of a [B, T, 3C] qkv projection with n_head heads: [B, T, C], one d(qkv) in backward.
    """
def chunk(x: Tensor, chunks: typing.SupportsInt | typing.SupportsIndex, dim: typing.SupportsInt | typing.SupportsIndex = 0) -> list:
    """
    `chunks` nearly equal views along `dim`.
    """
def clamp(x: Tensor, min: typing.SupportsFloat | typing.SupportsIndex | None = None, max: typing.SupportsFloat | typing.SupportsIndex | None = None) -> Tensor:
    """
    Limits each element to [min, max].
    """
def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: typing.Any = 1, padding: typing.Any = 0, dilation: typing.Any = 1, groups: typing.SupportsInt | typing.SupportsIndex = 1) -> Tensor:
    """
    2-D convolution of x [N, Cin, H, W].
    """
def cross_entropy(logits: Tensor, targets: typing.Any, ignore_index: typing.SupportsInt | typing.SupportsIndex = -100, label_smoothing: typing.SupportsFloat | typing.SupportsIndex = 0.0, reduction: str = 'mean') -> Tensor:
    """
    Cross-entropy of logits [N, C] against integer targets [N] (fused log_softmax).
    """
def default_generator() -> Generator:
    """
    The calling thread's default generator: the innermost GeneratorScope's, else the process-wide one.
    """
@typing.overload
def div(a: Tensor, b: Tensor) -> Tensor:
    """
    a / b.
    """
@typing.overload
def div(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    ...
@typing.overload
def div(a: typing.Any, b: typing.Any) -> Tensor:
    ...
def dropout(x: Tensor, p: typing.SupportsFloat | typing.SupportsIndex, training: bool = True, generator: Generator | None = None) -> Tensor:
    """
    Zeroes each element with probability p and scales the rest by 1/(1-p) (identity when not training).
    """
def dtype_size(arg0: typing.Any) -> int:
    """
    Bytes per element.
    """
def embedding(weight: Tensor, indices: typing.Any) -> Tensor:
    """
    Rows of `weight` picked by integer `indices`.
    """
def empty(*args, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    Uninitialised tensor of the given shape.
    """
def empty_like(t: Tensor) -> Tensor:
    """
    Uninitialised tensor like `t`.
    """
@typing.overload
def eq(a: Tensor, b: Tensor) -> Tensor:
    """
    a == b as u8 0/1.
    """
@typing.overload
def eq(a: Tensor, b: typing.Any) -> Tensor:
    ...
def exp(x: Tensor) -> Tensor:
    """
    e ** x.
    """
def from_dlpack(obj: typing.Any) -> Tensor:
    """
    A kirzl tensor sharing the memory of `obj` (torch.Tensor, CuPy/NumPy array, JAX array, or a DLPack capsule). The producer's memory stays alive until the kirzl tensor (and its views) die. Read-only producers are copied. A CUDA producer is called as obj.__dlpack__(stream=S) with S kirzl's current stream of its device (1, the legacy default stream, unless a C++ StreamGuard is active), so its pending writes are ordered before kirzl's ops; other producers get no stream. A bare capsule carries no ordering: synchronise before making it.
    """
def from_numpy(array: numpy.ndarray, copy: bool = False) -> Tensor:
    """
    A tensor sharing `array`'s memory (zero-copy) when its dtype and layout allow; otherwise, or with copy=True, a copy. See the module docs (Note [numpy sharing]) for when it copies.
    """
def full(shape: typing.Any, fill_value: typing.SupportsFloat | typing.SupportsIndex, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    A tensor of `shape` filled with `fill_value`.
    """
def full_like(t: Tensor, fill_value: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    A tensor like `t` filled with `fill_value`.
    """
@typing.overload
def ge(a: Tensor, b: Tensor) -> Tensor:
    """
    a >= b as u8.
    """
@typing.overload
def ge(a: Tensor, b: typing.Any) -> Tensor:
    ...
def gelu(x: Tensor, approximate: str = 'none') -> Tensor:
    """
    GELU: exact (erf) or 'tanh' approximation.
    """
def get_num_threads() -> int:
    """
    Threads used by CPU kernels.
    """
def grad_enabled() -> bool:
    """
    Whether ops on this thread record a graph.
    """
@typing.overload
def gt(a: Tensor, b: Tensor) -> Tensor:
    """
    a > b as u8.
    """
@typing.overload
def gt(a: Tensor, b: typing.Any) -> Tensor:
    ...
def init(backend: str = 'auto', timeout: typing.Any = None) -> comm.ProcessGroup:
    """
    Sets up the world once per process (mpirun/srun/plain) and returns it; later calls return the same group.
    """
def is_grad_enabled() -> bool:
    """
    Whether ops on this thread record a graph.
    """
def layer_norm(x: Tensor, normalized_shape: typing.Any, weight: Tensor | None = None, bias: Tensor | None = None, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05) -> Tensor:
    """
    Normalises over the trailing `normalized_shape` dims (f32 statistics), then scales by weight and adds bias.
    """
@typing.overload
def le(a: Tensor, b: Tensor) -> Tensor:
    """
    a <= b as u8.
    """
@typing.overload
def le(a: Tensor, b: typing.Any) -> Tensor:
    ...
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """
    x @ weight.T + bias.
    """
def log(x: Tensor) -> Tensor:
    """
    Natural logarithm.
    """
def log_softmax(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex = -1) -> Tensor:
    """
    Log-softmax along `dim`.
    """
@typing.overload
def lt(a: Tensor, b: Tensor) -> Tensor:
    """
    a < b as u8.
    """
@typing.overload
def lt(a: Tensor, b: typing.Any) -> Tensor:
    ...
def manual_seed(seed: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Re-seeds the calling thread's default generator.
    """
def masked_fill(x: Tensor, mask: typing.Any, value: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    x with `value` where mask is nonzero.
    """
def matmul(a: Tensor, b: Tensor) -> Tensor:
    """
    NumPy matmul (same floating dtype for both operands).
    """
def max(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex | None = None, keepdim: bool = False) -> Tensor:
    """
    Largest element (over dim when given).
    """
def max_pool2d(x: Tensor, kernel_size: typing.Any = 2, stride: typing.Any = None, padding: typing.Any = 0, count_include_pad: bool = True) -> Tensor:
    """
    Max pooling (stride defaults to kernel_size).
    """
@typing.overload
def maximum(a: Tensor, b: Tensor) -> Tensor:
    """
    Elementwise maximum.
    """
@typing.overload
def maximum(a: Tensor, b: typing.Any) -> Tensor:
    ...
def mean(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    """
    Mean over dims.
    """
def min(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex | None = None, keepdim: bool = False) -> Tensor:
    """
    Smallest element (over dim when given).
    """
@typing.overload
def minimum(a: Tensor, b: Tensor) -> Tensor:
    """
    Elementwise minimum.
    """
@typing.overload
def minimum(a: Tensor, b: typing.Any) -> Tensor:
    ...
def mse_loss(input: Tensor, target: typing.Any, reduction: str = 'mean') -> Tensor:
    """
    Mean (or sum, or none) of squared differences.
    """
@typing.overload
def mul(a: Tensor, b: Tensor) -> Tensor:
    """
    a * b.
    """
@typing.overload
def mul(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    ...
@typing.overload
def mul(a: typing.Any, b: typing.Any) -> Tensor:
    ...
@typing.overload
def ne(a: Tensor, b: Tensor) -> Tensor:
    """
    a != b as u8.
    """
@typing.overload
def ne(a: Tensor, b: typing.Any) -> Tensor:
    ...
def neg(x: Tensor) -> Tensor:
    """
    -x.
    """
def normal(shape: typing.Any, mean: typing.SupportsFloat | typing.SupportsIndex = 0.0, std: typing.SupportsFloat | typing.SupportsIndex = 1.0, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False, generator: Generator | None = None) -> Tensor:
    """
    Normal N(mean, std^2) from the (seeded) generator.
    """
def ones(*args, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    Ones.
    """
def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """
    Ones like `t`.
    """
def pow(x: Tensor, exponent: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    x ** exponent.
    """
def promote_types(arg0: typing.Any, arg1: typing.Any) -> DType:
    """
    The dtype of a binary op on dtypes a and b.
    """
def rand(*args, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False, generator: typing.Any = None) -> Tensor:
    """
    Uniform in [0, 1).
    """
def randint(low: typing.SupportsInt | typing.SupportsIndex, high: typing.SupportsInt | typing.SupportsIndex, shape: typing.Any, dtype: typing.Any = None, device: typing.Any = None, generator: Generator | None = None) -> Tensor:
    """
    Uniform integers in [low, high).
    """
def randn(*args, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False, generator: typing.Any = None) -> Tensor:
    """
    Standard normal.
    """
def randperm(n: typing.SupportsInt | typing.SupportsIndex, generator: Generator | None = None) -> Tensor:
    """
    A permutation of 0..n-1 (i64).
    """
def rank() -> int:
    """
    This process's rank (calls init()).
    """
def rdiv(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    b / a for a scalar b.
    """
def reduce_scatter(output: typing.Any, input: typing.Any, op: typing.Any = 'sum', group: typing.Any = None, timeout: typing.Any = None, async_op: bool = False) -> typing.Any:
    """
    Reduces input over ranks; rank r's output receives block r; returns output.
    """
def relu(x: Tensor) -> Tensor:
    """
    max(x, 0).
    """
def rsqrt(x: Tensor) -> Tensor:
    """
    1 / sqrt(x).
    """
def rsub(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    """
    b - a for a scalar b.
    """
def scalar_tensor(value: typing.SupportsFloat | typing.SupportsIndex, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    A 0-d tensor.
    """
def set_grad_enabled(enabled: bool) -> None:
    """
    Turns grad mode on or off for this thread.
    """
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Threads used by CPU kernels.
    """
def sigmoid(x: Tensor) -> Tensor:
    """
    1 / (1 + exp(-x)).
    """
def softmax(x: Tensor, dim: typing.SupportsInt | typing.SupportsIndex = -1) -> Tensor:
    """
    Softmax along `dim` (max-subtracted).
    """
def split(x: Tensor, split_size_or_sizes: typing.Any, dim: typing.SupportsInt | typing.SupportsIndex = 0) -> list:
    """
    Views along dim.
    """
def sqrt(x: Tensor) -> Tensor:
    """
    Square root.
    """
def stack(tensors: collections.abc.Sequence[Tensor], dim: typing.SupportsInt | typing.SupportsIndex = 0) -> Tensor:
    """
    Stacks equal-shaped tensors along a new dim.
    """
@typing.overload
def sub(a: Tensor, b: Tensor) -> Tensor:
    """
    a - b.
    """
@typing.overload
def sub(a: Tensor, b: typing.SupportsFloat | typing.SupportsIndex) -> Tensor:
    ...
@typing.overload
def sub(a: typing.Any, b: typing.Any) -> Tensor:
    ...
def sum(x: Tensor, dim: typing.Any = None, keepdim: bool = False) -> Tensor:
    """
    Sum over dims (all when None).
    """
def sum_to(x: Tensor, shape: typing.Any) -> Tensor:
    """
    Sums `x` down to `shape` (the inverse of broadcasting).
    """
def tanh(x: Tensor) -> Tensor:
    """
    Hyperbolic tangent.
    """
def uniform(shape: typing.Any, low: typing.SupportsFloat | typing.SupportsIndex, high: typing.SupportsFloat | typing.SupportsIndex, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False, generator: Generator | None = None) -> Tensor:
    """
    Uniform in [low, high) from the (seeded) generator.
    """
def var(x: Tensor, dim: typing.Any = None, correction: typing.SupportsInt | typing.SupportsIndex = 1, keepdim: bool = False) -> Tensor:
    """
    Variance over dims, dividing by N - correction (1: unbiased).
    """
def where(cond: typing.Any, a: typing.Any, b: typing.Any) -> Tensor:
    """
    cond ? a : b (broadcasting).
    """
def world_size() -> int:
    """
    Number of ranks (calls init()).
    """
def zeros(*args, dtype: typing.Any = None, device: typing.Any = None, requires_grad: bool = False) -> Tensor:
    """
    Zeros: kirzl.zeros(2, 3) or kirzl.zeros((2, 3)).
    """
def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """
    Zeros like `t`.
    """
__version__: str = '0.1.0'
bf16: DType
bfloat16: DType
f16: DType
f32: DType
f64: DType
float16: DType
float32: DType
float64: DType
has_cuda: bool = False
has_mpi: bool = True
i32: DType
i64: DType
int32: DType
int64: DType
u16: DType
u8: DType
uint16: DType
uint8: DType
