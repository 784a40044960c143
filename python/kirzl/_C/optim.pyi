"""
Optimizers, learning-rate schedules and gradient clipping.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
import typing
__all__: list[str] = ['Adam', 'AdamW', 'ConstantLR', 'CosineWithWarmup', 'LAMB', 'LRScheduler', 'LinearDecay', 'Optimizer', 'SGD', 'StepLR', 'clip_grad_norm', 'clip_grad_norm_', 'clip_grad_value']
class Optimizer:
    """
    Base of the optimizers. `params` is an iterable of tensors or of parameter-group dicts
    {"params": [...], "lr": ..., "weight_decay": ...}. step() updates parameters in place (every
    handle and view sees it) and releases the GIL.
    """
    def check_state_dict(self, state_dict: typing.Any) -> None:
        """
        Raises what load_state_dict would raise, changing nothing.
        """
    def initial_lr(self, group: typing.SupportsInt | typing.SupportsIndex = 0) -> float:
        """
        The lr a group started with (the base schedules scale).
        """
    def load_state_dict(self, state_dict: typing.Any) -> None:
        """
        Restores a state_dict() (validated first; unchanged on error).
        """
    def lr(self, group: typing.SupportsInt | typing.SupportsIndex = 0) -> float:
        """
        Current learning rate of a group.
        """
    def num_groups(self) -> int:
        """
        Number of parameter groups.
        """
    def num_params(self) -> int:
        """
        Number of parameters over all groups.
        """
    def params(self, group: typing.SupportsInt | typing.SupportsIndex = 0) -> list[kirzl._C.Tensor]:
        """
        The parameters of a group (handles shared with the caller).
        """
    def set_lr(self, lr: typing.SupportsFloat | typing.SupportsIndex, group: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
        """
        Sets a group's lr (every group for -1).
        """
    def state_dict(self) -> dict:
        """
        A copy of the state.
        """
    def step(self) -> None:
        """
        One update of every parameter with a gradient.
        """
    def step_count(self, param_index: typing.SupportsInt | typing.SupportsIndex) -> int:
        """
        Steps taken by parameter `param_index`.
        """
    def weight_decay(self, group: typing.SupportsInt | typing.SupportsIndex = 0) -> float:
        """
        Weight decay of a group.
        """
    def zero_grad(self, set_to_none: bool = True) -> None:
        """
        Drops every gradient (set_to_none) or zeroes them in place (keeps DDP bucket views).
        """
    @property
    def name(self) -> str:
        ...
class SGD(Optimizer):
    """
    SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).
    """
    def __init__(self, params: typing.Any, lr: typing.SupportsFloat | typing.SupportsIndex = 0.001, momentum: typing.SupportsFloat | typing.SupportsIndex = 0.0, dampening: typing.SupportsFloat | typing.SupportsIndex = 0.0, weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.0, nesterov: bool = False, maximize: bool = False) -> None:
        ...
class Adam(Optimizer):
    """
    Adam (torch.optim.Adam), L2 weight decay coupled into the gradient.
    """
    def __init__(self, params: typing.Any, lr: typing.SupportsFloat | typing.SupportsIndex = 0.001, betas: typing.Any = (0.9, 0.999), eps: typing.SupportsFloat | typing.SupportsIndex = 1e-08, weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.0, amsgrad: bool = False, maximize: bool = False, capturable: bool = False) -> None:
        ...
    @property
    def capturable(self) -> bool:
        """
        True when the step counts and lr live on the parameters' device, so that step() can run inside a kirzl.cuda.Graph capture (each replay advances them). The first step must run before the capture.
        """
class AdamW(Optimizer):
    """
    AdamW (torch.optim.AdamW), decoupled weight decay.
    """
    def __init__(self, params: typing.Any, lr: typing.SupportsFloat | typing.SupportsIndex = 0.001, betas: typing.Any = (0.9, 0.999), eps: typing.SupportsFloat | typing.SupportsIndex = 1e-08, weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.01, amsgrad: bool = False, maximize: bool = False, capturable: bool = False) -> None:
        ...
    @property
    def capturable(self) -> bool:
        """
        True when the step counts and lr live on the parameters' device, so that step() can run inside a kirzl.cuda.Graph capture (each replay advances them). The first step must run before the capture.
        """
class LAMB(Optimizer):
    """
    LAMB (You et al. 2019): layer-wise trust ratio over Adam moments.
    """
    def __init__(self, params: typing.Any, lr: typing.SupportsFloat | typing.SupportsIndex = 0.001, betas: typing.Any = (0.9, 0.999), eps: typing.SupportsFloat | typing.SupportsIndex = 1e-06, weight_decay: typing.SupportsFloat | typing.SupportsIndex = 0.01) -> None:
        ...
class LRScheduler:
    """
    Base of the schedules; holds the optimizer (kept alive).
    """
    def get_lr(self) -> list[float]:
        """
        The lr of every group at last_step().
        """
    def last_step(self) -> int:
        """
        Number of step() calls so far.
        """
    def load_state_dict(self, state_dict: typing.Any) -> None:
        """
        Restores a state_dict() (validated first; unchanged on error).
        """
    def lr_at(self, step: typing.SupportsInt | typing.SupportsIndex, base_lr: typing.SupportsFloat | typing.SupportsIndex) -> float:
        """
        The lr for `step` of a group whose base lr is `base_lr`.
        """
    def state_dict(self) -> dict:
        """
        {'last_step': 0-d tensor}.
        """
    def step(self) -> None:
        """
        Advances one step and sets every group's lr.
        """
class ConstantLR(LRScheduler):
    """
    lr = base lr at every step.
    """
    def __init__(self, optimizer: Optimizer) -> None:
        ...
class StepLR(LRScheduler):
    """
    lr = base * gamma ** (step // step_size).
    """
    def __init__(self, optimizer: Optimizer, step_size: typing.SupportsInt | typing.SupportsIndex = 1, gamma: typing.SupportsFloat | typing.SupportsIndex = 0.1) -> None:
        ...
class CosineWithWarmup(LRScheduler):
    """
    Linear warm-up from 0, then a half cosine to min_lr.
    """
    def __init__(self, optimizer: Optimizer, *, warmup_steps: typing.SupportsInt | typing.SupportsIndex = 0, total_steps: typing.SupportsInt | typing.SupportsIndex, min_lr: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> None:
        ...
class LinearDecay(LRScheduler):
    """
    Optional warm-up, then linear from base to base * end_factor.
    """
    def __init__(self, optimizer: Optimizer, *, total_steps: typing.SupportsInt | typing.SupportsIndex, end_factor: typing.SupportsFloat | typing.SupportsIndex = 0.0, warmup_steps: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
def clip_grad_norm(params: collections.abc.Sequence[kirzl._C.Tensor], max_norm: typing.SupportsFloat | typing.SupportsIndex, norm_type: typing.SupportsFloat | typing.SupportsIndex = 2.0, error_if_nonfinite: bool = False) -> float:
    """
    Scales gradients in place so their global norm is at most max_norm; returns the norm before clipping.
    """
def clip_grad_norm_(params: collections.abc.Sequence[kirzl._C.Tensor], max_norm: typing.SupportsFloat | typing.SupportsIndex, norm_type: typing.SupportsFloat | typing.SupportsIndex = 2.0, error_if_nonfinite: bool = False) -> kirzl._C.Tensor:
    """
    As clip_grad_norm, but returns the norm as a 0-d f32 tensor on the gradients' device: no host sync on CUDA.
    """
def clip_grad_value(params: collections.abc.Sequence[kirzl._C.Tensor], clip_value: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Clamps every gradient element into [-clip_value, clip_value] in place.
    """
