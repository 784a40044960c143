"""
Modules: layers, containers, initialisation.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
import typing
from . import init
__all__: list[str] = ['AvgPool2d', 'BatchNorm2d', 'Conv2d', 'Dropout', 'Embedding', 'Flatten', 'GELU', 'LayerNorm', 'Linear', 'MaxPool2d', 'Module', 'ModuleList', 'ReLU', 'Sequential', 'SyncBatchNorm', 'init']
class Module:
    """
    Base of every layer and model. Subclass it in Python: call super().__init__(), assign parameters
    (tensors with requires_grad=True, e.g. kirzl.nn.Parameter(...)) and submodules as attributes, and
    define forward(x). Such a module works everywhere a C++ module does (Sequential, DDP, checkpoints).
    """
    def __call__(self, *args, **kwargs):
        ...
    def __init__(self) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def __setattr__(self, name, value):
        ...
    def buffers(self, recurse: bool = True) -> list[kirzl._C.Tensor]:
        """
        Buffers (saved, not trained).
        """
    def check_state_dict(self, state_dict: typing.Any, strict: bool = True) -> None:
        """
        Raises what load_state_dict would raise, changing nothing.
        """
    def children(self) -> list:
        """
        Direct children in registration order.
        """
    def eval(self) -> Module:
        """
        train(False); returns self.
        """
    def forward(self, x: kirzl._C.Tensor) -> kirzl._C.Tensor:
        """
        The computation (releases the GIL; Python forwards take it back).
        """
    def is_training(self) -> bool:
        """
        Whether the module is in training mode.
        """
    def load_state_dict(self, state_dict: typing.Any, strict: bool = True) -> None:
        """
        Copies values in place (tensors or NumPy arrays).
        """
    def named_buffers(self, recurse: bool = True) -> list:
        """
        (dotted name, buffer) pairs.
        """
    def named_children(self) -> list:
        """
        (name, module) of the direct children.
        """
    def named_parameters(self, recurse: bool = True) -> list:
        """
        (dotted name, parameter) pairs: own parameters first, then children's.
        """
    def num_parameters(self) -> int:
        """
        Total number of parameter elements.
        """
    def parameters(self, recurse: bool = True) -> list[kirzl._C.Tensor]:
        """
        Parameters in registration order.
        """
    def register_buffer(self, name: str, tensor: typing.Any) -> kirzl._C.Tensor:
        """
        Registers a buffer (state saved in state_dict but not trained) and returns its handle. Python-defined modules only.
        """
    def register_forward_pre_hook(self, hook: collections.abc.Callable) -> int:
        """
        Registers hook(module), run before every call module(x) (and run_forward_pre_hooks()), after the hooks registered before it; returns a handle for remove_forward_pre_hook.
        """
    def register_module(self, name: str, module: Module) -> Module:
        """
        Registers a submodule under `name` (its parameters become name.*) and returns it. Python-defined modules only.
        """
    def register_parameter(self, name: str, tensor: typing.Any, requires_grad: bool = True) -> kirzl._C.Tensor:
        """
        Registers a parameter (sets requires_grad) and returns its handle. Python-defined modules only.
        """
    def remove_forward_pre_hook(self, handle: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        Removes the hook with this handle; False when this module has none.
        """
    def repr(self) -> str:
        """
        One-line description, e.g. 'Linear(in_features=784, ...)'.
        """
    def run_forward_pre_hooks(self) -> None:
        """
        Runs this module's forward pre-hooks (module(x) does, then forward): call it before reading a submodule's parameters without calling it (sharded DDP waits for them there).
        """
    def state_dict(self) -> dict:
        """
        Parameters and buffers by dotted name (handles, not copies).
        """
    def str(self) -> str:
        """
        Multi-line tree of this module and its children.
        """
    def to(self, target: typing.Any) -> Module:
        """
        Moves parameters and buffers to a device, or converts floating ones to a dtype, in place; returns self.
        """
    def train(self, mode: bool = True) -> Module:
        """
        Training mode for this module and its children (Dropout, BatchNorm); returns self.
        """
    def zero_grad(self, set_to_none: bool = True) -> None:
        """
        Clears gradients: drops them, or zeroes them in place.
        """
    @property
    def training(self) -> bool:
        ...
class Linear(Module):
    """
    y = x W^T + b.
    """
    def __init__(self, in_features: typing.SupportsInt | typing.SupportsIndex, out_features: typing.SupportsInt | typing.SupportsIndex, bias: bool = True, dtype: typing.Any = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def in_features(self) -> int:
        ...
    @property
    def out_features(self) -> int:
        ...
    @property
    def weight(self) -> kirzl._C.Tensor:
        ...
class Conv2d(Module):
    """
    2-D convolution layer.
    """
    def __init__(self, in_channels: typing.SupportsInt | typing.SupportsIndex, out_channels: typing.SupportsInt | typing.SupportsIndex, kernel_size: typing.Any, stride: typing.Any = 1, padding: typing.Any = 0, dilation: typing.Any = 1, groups: typing.SupportsInt | typing.SupportsIndex = 1, bias: bool = True, dtype: typing.Any = None) -> None:
        ...
    @property
    def bias(self) -> typing.Any:
        ...
    @property
    def in_channels(self) -> int:
        ...
    @property
    def out_channels(self) -> int:
        ...
    @property
    def weight(self) -> kirzl._C.Tensor:
        ...
class BatchNorm2d(Module):
    """
    Batch normalisation over [N, C, H, W].
    """
    def __init__(self, num_features: typing.SupportsInt | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05, momentum: typing.SupportsFloat | typing.SupportsIndex = 0.1, affine: bool = True, track_running_stats: bool = True) -> None:
        ...
    @property
    def bias(self) -> kirzl._C.Tensor:
        ...
    @property
    def num_features(self) -> int:
        ...
    @property
    def running_mean(self) -> kirzl._C.Tensor:
        ...
    @property
    def running_var(self) -> kirzl._C.Tensor:
        ...
    @property
    def weight(self) -> kirzl._C.Tensor:
        ...
class SyncBatchNorm(BatchNorm2d):
    """
    BatchNorm2d with statistics over every rank's batch.
    """
    def __init__(self, num_features: typing.SupportsInt | typing.SupportsIndex, group: typing.Any, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05, momentum: typing.SupportsFloat | typing.SupportsIndex = 0.1, affine: bool = True, track_running_stats: bool = True) -> None:
        ...
class LayerNorm(Module):
    """
    Layer normalisation over trailing dims.
    """
    def __init__(self, normalized_shape: typing.Any, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05, elementwise_affine: bool = True) -> None:
        ...
    @property
    def bias(self) -> kirzl._C.Tensor:
        ...
    @property
    def weight(self) -> kirzl._C.Tensor:
        ...
class Embedding(Module):
    """
    Lookup table [num, dim].
    """
    def __init__(self, num_embeddings: typing.SupportsInt | typing.SupportsIndex, embedding_dim: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def weight(self) -> kirzl._C.Tensor:
        ...
class Dropout(Module):
    """
    Dropout while training.
    """
    def __init__(self, p: typing.SupportsFloat | typing.SupportsIndex = 0.5, generator: kirzl._C.Generator | None = None) -> None:
        ...
    @property
    def p(self) -> float:
        ...
class ReLU(Module):
    """
    max(x, 0).
    """
    def __init__(self) -> None:
        ...
class GELU(Module):
    """
    GELU activation (approximate: 'none' or 'tanh').
    """
    def __init__(self, approximate: str = 'none') -> None:
        ...
class Flatten(Module):
    """
    Flattens dims start_dim..end_dim (default: all but the batch dim).
    """
    def __init__(self, start_dim: typing.SupportsInt | typing.SupportsIndex = 1, end_dim: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
        ...
class MaxPool2d(Module):
    """
    Max pooling (stride 0: equal to kernel_size).
    """
    def __init__(self, kernel_size: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex = 0, padding: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class AvgPool2d(Module):
    """
    Average pooling (stride 0: equal to kernel_size).
    """
    def __init__(self, kernel_size: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex = 0, padding: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class Sequential(Module):
    """
    Runs its children in order; children are named '0', '1', ...
    """
    def __getitem__(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> Module:
        ...
    def __init__(self, *args) -> None:
        ...
    def __iter__(self) -> collections.abc.Iterator:
        ...
    def __len__(self) -> int:
        ...
    def append(self, module: Module) -> None:
        """
        Appends a module.
        """
    def push_back(self, module: Module) -> None:
        """
        Appends a module (C++ name).
        """
    def size(self) -> int:
        """
        Number of layers.
        """
class ModuleList(Module):
    """
    An indexable list of modules.
    """
    def __getitem__(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> Module:
        ...
    def __init__(self, modules: typing.Any = None) -> None:
        ...
    def __iter__(self) -> collections.abc.Iterator:
        ...
    def __len__(self) -> int:
        ...
    def append(self, module: Module) -> None:
        """
        Appends a module.
        """
