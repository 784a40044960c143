"""
Checkpoints (safetensors), metrics logs, progress bars, timelines.
"""
from __future__ import annotations
import collections.abc
import kirzl._C.nn
import kirzl._C.optim
import typing
__all__: list[str] = ['CheckpointInfo', 'MetricsLog', 'MetricsRecord', 'ProgressBar', 'Timeline', 'format_duration', 'format_rate', 'kCheckpointFormat', 'load_checkpoint', 'load_safetensors', 'read_safetensors_header', 'safetensors_dtype_name', 'save_checkpoint', 'save_safetensors']
class CheckpointInfo:
    """
    Training position and free-form configuration of a checkpoint.
    """
    def __init__(self, step: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, config: collections.abc.Mapping[str, str] = {}) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def config(self) -> dict[str, str]:
        ...
    @config.setter
    def config(self, arg0: collections.abc.Mapping[str, str]) -> None:
        ...
    @property
    def epoch(self) -> int:
        ...
    @epoch.setter
    def epoch(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def step(self) -> int:
        ...
    @step.setter
    def step(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class MetricsRecord:
    """
    One JSON line: step, epoch, optional standard fields, extra fields.
    """
    def __init__(self, **kwargs) -> None:
        ...
    def set(self, name: str, value: typing.Any) -> MetricsRecord:
        ...
    def to_json(self) -> str:
        ...
    @property
    def accuracy(self) -> float | None:
        ...
    @accuracy.setter
    def accuracy(self, arg0: typing.SupportsFloat | typing.SupportsIndex | None) -> None:
        ...
    @property
    def elapsed_seconds(self) -> float | None:
        ...
    @elapsed_seconds.setter
    def elapsed_seconds(self, arg0: typing.SupportsFloat | typing.SupportsIndex | None) -> None:
        ...
    @property
    def epoch(self) -> int:
        ...
    @epoch.setter
    def epoch(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def loss(self) -> float | None:
        ...
    @loss.setter
    def loss(self, arg0: typing.SupportsFloat | typing.SupportsIndex | None) -> None:
        ...
    @property
    def lr(self) -> float | None:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex | None) -> None:
        ...
    @property
    def samples_per_second(self) -> float | None:
        ...
    @samples_per_second.setter
    def samples_per_second(self, arg0: typing.SupportsFloat | typing.SupportsIndex | None) -> None:
        ...
    @property
    def step(self) -> int:
        ...
    @step.setter
    def step(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class MetricsLog:
    """
    Appends JSON lines to a file (empty path: disabled). Thread-safe.
    """
    def __init__(self, path: str = '') -> None:
        ...
    def enabled(self) -> bool:
        ...
    def log(self, record: typing.Any = None, **kwargs) -> None:
        """
        log(record) or log(step=..., loss=..., any_extra=...).
        """
    def path(self) -> str:
        ...
class ProgressBar:
    """
    One line of training progress on stderr (or stdout).
    """
    def __init__(self, *, total_steps: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, epochs: typing.SupportsInt | typing.SupportsIndex = 0, label: str = '', enabled: bool = True, out: str = 'stderr', interactive: bool | None = None, percent_every: typing.SupportsInt | typing.SupportsIndex = 10, bar_width: typing.SupportsInt | typing.SupportsIndex = 20) -> None:
        ...
    def finish(self) -> None:
        ...
    def interactive(self) -> bool:
        ...
    def line(self) -> str:
        ...
    def update(self, step: typing.SupportsInt | typing.SupportsIndex, loss: typing.SupportsFloat | typing.SupportsIndex, samples_per_second: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> None:
        ...
class Timeline:
    """
    Chrome-trace JSON recorder of named spans (empty path: disabled). Thread-safe.
    """
    @staticmethod
    def path_from_env(rank: typing.SupportsInt | typing.SupportsIndex) -> str:
        ...
    def __init__(self, path: str = '', pid: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def enabled(self) -> bool:
        ...
    def now_us(self) -> int:
        ...
    def path(self) -> str:
        ...
    def size(self) -> int:
        ...
    def span(self, name: str, category: str, start_us: typing.SupportsInt | typing.SupportsIndex, end_us: typing.SupportsInt | typing.SupportsIndex, track: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def write(self) -> None:
        ...
def format_duration(seconds: typing.SupportsFloat | typing.SupportsIndex) -> str:
    ...
def format_rate(value: typing.SupportsFloat | typing.SupportsIndex) -> str:
    ...
def load_checkpoint(path: str, model: kirzl._C.nn.Module, opt: kirzl._C.optim.Optimizer | None = None, strict: bool = True) -> CheckpointInfo:
    """
    Restores a checkpoint into model (and opt) in place; returns its CheckpointInfo. All-or-nothing.
    """
def load_safetensors(path: str, max_header_bytes: typing.SupportsInt | typing.SupportsIndex = 100000000) -> tuple[dict, dict[str, str]]:
    """
    Reads a safetensors file: returns (dict of tensors, metadata dict). The file is validated as untrusted.
    """
def read_safetensors_header(path: str) -> str:
    ...
def safetensors_dtype_name(dtype: typing.Any) -> str:
    ...
def save_checkpoint(path: str, model: kirzl._C.nn.Module, opt: kirzl._C.optim.Optimizer | None = None, *, step: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, config: collections.abc.Mapping[str, str] = {}) -> None:
    """
    Writes model (and optimizer) state and the training position to a safetensors file, atomically.
    """
def save_safetensors(path: str, tensors: typing.Any, metadata: collections.abc.Mapping[str, str] = {}) -> None:
    """
    Writes a dict of tensors (or NumPy arrays) as a safetensors file, atomically.
    """
kCheckpointFormat: str = 'kirzl-checkpoint-1'
