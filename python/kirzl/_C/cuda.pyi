"""
CUDA devices and CUDA graphs.
"""
from __future__ import annotations
import collections.abc
import typing
__all__: list[str] = ['CaptureMode', 'Graph', 'current_device', 'device_count', 'is_available', 'is_capturing', 'set_device', 'synchronize']
class CaptureMode:
    """
    How a capture treats CUDA calls that are unsafe while capturing.
    
    Members:
    
      Global : unsafe calls from any thread fail while the capture runs
    
      ThreadLocal : unsafe calls from the capturing thread fail (the default)
    
      Relaxed : CUDA does not check; kirzl's own checks still apply
    """
    Global: typing.ClassVar[CaptureMode]
    Relaxed: typing.ClassVar[CaptureMode]
    ThreadLocal: typing.ClassVar[CaptureMode]
    __members__: typing.ClassVar[dict[str, CaptureMode]]
    @typing.overload
    def __eq__(self, other: CaptureMode) -> bool:
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
    def __ne__(self, other: CaptureMode) -> bool:
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
class Graph:
    """
    A training step (or any device work) captured once as a CUDA graph and replayed with one launch,
    as torch.cuda.CUDAGraph. Run a few steps eagerly first (optimizer state, cuDNN plans and the
    allocator's cache are then in place), then:
    
        g = kirzl.cuda.Graph()
        loss = g.capture(lambda: train_step(static_x, static_y))   # records, computes nothing
        for x, y in loader:
            static_x.copy_(x); static_y.copy_(y)                     # new data into the same tensors
            g.replay()                                               # one launch
            print(loss.item())                                       # overwritten in place by each replay
    
    The graph reads the tensors its step read at capture: copy new data into them, never rebind them.
    Tensors made during the capture (the value `step` returns, for one) stay valid and are
    overwritten by each replay. Inside the step, operations that cannot be captured (item(), to('cpu'),
    synchronize, dropout with p > 0, collectives, optimizers other than Adam/AdamW with
    capturable=True) raise UnsupportedError naming the op; the capture is then discarded and may be
    tried again. Raises UnsupportedError on construction without CUDA or without a GPU.
    """
    def __init__(self, device: typing.SupportsInt | typing.SupportsIndex = -1, mode: CaptureMode = ...) -> None:
        """
        A Graph with nothing captured, for `device` (-1: the current device).
        """
    def capture(self, step: collections.abc.Callable) -> typing.Any:
        """
        Calls step() once while recording its device work into this graph and returns what it returned. The graph keeps `step` alive (and so the tensors it refers to, whose memory the replays use). Raises InvalidArgumentError when already captured; an exception inside step() discards the capture and propagates.
        """
    def replay(self) -> None:
        """
        Launches the captured work on the current stream (the host does not wait); ordered after the previous replay.
        """
    @property
    def captured(self) -> bool:
        """
        True once capture() has succeeded.
        """
    @property
    def device(self) -> int:
        """
        The CUDA device the graph captures on.
        """
def current_device() -> int:
    """
    The calling thread's current CUDA device (raises UnsupportedError without one).
    """
def device_count() -> int:
    """
    CUDA devices this process can use (0 without CUDA).
    """
def is_available() -> bool:
    """
    True when device_count() > 0.
    """
def is_capturing(device: typing.SupportsInt | typing.SupportsIndex = 0) -> bool:
    """
    True while the calling thread's current stream of `device` is being captured into a CUDA graph.
    """
def set_device(device: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Makes `device` the calling thread's current CUDA device (raises UnsupportedError without one).
    """
def synchronize(device: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Waits until all work on every stream of `device` (-1: the current device) has completed; raises the error of an out-of-range index found by an earlier embedding or cross_entropy on that device.
    """
