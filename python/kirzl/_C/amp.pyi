"""
Mixed precision: dynamic loss scaling (see kirzl/amp.hpp for the policy).
"""
from __future__ import annotations
import kirzl._C
import kirzl._C.comm
import kirzl._C.optim
import typing
__all__: list[str] = ['GradScaler']
class GradScaler:
    """
    Dynamic loss scaling for f16 training (torch.amp.GradScaler):
    
        scaler.scale(loss).backward(); scaler.unscale_(opt)  # optional, before clipping
        scaler.step(opt); scaler.update()
    
    step() skips the optimizer step when a gradient is inf/NaN; given `comm` (a Communicator), the
    flag is all-reduced so every rank skips alike. update() halves the scale after a skip and
    doubles it after growth_interval clean steps. bf16/f16 parameters get f32 master weights in the
    optimizers themselves.
    """
    def __init__(self, init_scale: typing.SupportsFloat | typing.SupportsIndex = 65536.0, growth_factor: typing.SupportsFloat | typing.SupportsIndex = 2.0, backoff_factor: typing.SupportsFloat | typing.SupportsIndex = 0.5, growth_interval: typing.SupportsInt | typing.SupportsIndex = 2000, enabled: bool = True, comm: kirzl._C.comm.Communicator | None = None) -> None:
        ...
    def get_scale(self) -> float:
        """
        The current scale (1 when disabled).
        """
    def growth_tracker(self) -> int:
        """
        Consecutive clean steps towards the next growth.
        """
    def is_enabled(self) -> bool:
        ...
    def last_step_skipped(self, optimizer: kirzl._C.optim.Optimizer) -> bool:
        """
        True when the last step() of the optimizer was skipped.
        """
    def load_state_dict(self, state_dict: typing.Any) -> None:
        """
        Restores a state_dict() (validated first; unchanged on error).
        """
    def scale(self, loss: kirzl._C.Tensor) -> kirzl._C.Tensor:
        """
        loss * scale (a 16-bit loss is converted to f32 first).
        """
    def state_dict(self) -> dict:
        """
        {'scale', 'growth_factor', 'backoff_factor', 'growth_interval', 'growth_tracker'}.
        """
    def step(self, optimizer: kirzl._C.optim.Optimizer) -> bool:
        """
        Unscales (unless done) and steps unless a gradient overflowed; True when it stepped.
        """
    def unscale_(self, optimizer: kirzl._C.optim.Optimizer) -> None:
        """
        Divides the optimizer's gradients by the scale in place and records inf/NaN.
        """
    def update(self) -> None:
        """
        Backs off after a skipped step, grows after growth_interval clean ones.
        """
