"""
Checkpoints (safetensors), metrics logs, progress bars, timelines.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
import kirzl._C.nn
import kirzl._C.optim
import typing
__all__: list[str] = ['CheckpointInfo', 'MetricsLog', 'MetricsRecord', 'ProgressBar', 'Timeline', 'consolidate', 'format_duration', 'format_rate', 'kCheckpointFormat', 'load_checkpoint', 'load_safetensors', 'read_safetensors_header', 'safetensors_dtype_name', 'save_checkpoint', 'save_safetensors']
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
        """
        Adds (or replaces) an extra field; returns the record.
        """
    def to_json(self) -> str:
        """
        The JSON object of this record.
        """
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
        """
        False when built with an empty path (does nothing).
        """
    def log(self, record: typing.Any = None, **kwargs) -> None:
        """
        log(record) or log(step=..., loss=..., any_extra=...).
        """
    def path(self) -> str:
        """
        The output file.
        """
class ProgressBar:
    """
    One line of training progress on stderr (or stdout).
    """
    def __init__(self, *, total_steps: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, epochs: typing.SupportsInt | typing.SupportsIndex = 0, label: str = '', enabled: bool = True, out: str = 'stderr', interactive: bool | None = None, percent_every: typing.SupportsInt | typing.SupportsIndex = 10, bar_width: typing.SupportsInt | typing.SupportsIndex = 20) -> None:
        ...
    def finish(self) -> None:
        """
        Draws the final state and ends the line.
        """
    def interactive(self) -> bool:
        """
        True when redrawing one line in place (a terminal).
        """
    def line(self) -> str:
        """
        The text of the current progress line.
        """
    def update(self, step: typing.SupportsInt | typing.SupportsIndex, loss: typing.SupportsFloat | typing.SupportsIndex, samples_per_second: typing.SupportsFloat | typing.SupportsIndex = -1.0) -> None:
        """
        Reports `step` finished steps with the latest loss and throughput; draws when due.
        """
class Timeline:
    """
    Chrome-trace JSON recorder of named spans (empty path: disabled). Thread-safe.
    """
    @staticmethod
    def path_from_env(rank: typing.SupportsInt | typing.SupportsIndex) -> str:
        """
        The trace file for `rank` named by KIRZL_TIMELINE ('' when unset).
        """
    def __init__(self, path: str = '', pid: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def enabled(self) -> bool:
        """
        False when built with an empty path (does nothing).
        """
    def now_us(self) -> int:
        """
        Microseconds since the timeline was created.
        """
    def path(self) -> str:
        """
        The output file.
        """
    def size(self) -> int:
        """
        Number of recorded spans.
        """
    def span(self, name: str, category: str, start_us: typing.SupportsInt | typing.SupportsIndex, end_us: typing.SupportsInt | typing.SupportsIndex, track: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Records a span [start_us, end_us) on lane `track`.
        """
    def write(self) -> None:
        """
        Writes the spans recorded so far (atomically).
        """
def consolidate(dir: str, out_file: str, include_optimizer: bool = True) -> None:
    """
    Writes a sharded checkpoint directory (e.g. a DDP checkpoint) as one ordinary safetensors file, atomically: a checkpoint that load_checkpoint(path, model, opt) and Python's safetensors read.
    """
def format_duration(seconds: typing.SupportsFloat | typing.SupportsIndex) -> str:
    """
    '0:42', '1:02:03' for a number of seconds.
    """
def format_rate(value: typing.SupportsFloat | typing.SupportsIndex) -> str:
    """
    '512', '41.2k', '1.35M'.
    """
@typing.overload
def load_checkpoint(path: str, model: kirzl._C.nn.Module, opt: kirzl._C.optim.Optimizer | None = None, strict: bool = True) -> CheckpointInfo:
    """
    Restores a checkpoint into model (and opt) in place; returns its CheckpointInfo. All-or-nothing.
    """
@typing.overload
def load_checkpoint(path: str, model: kirzl._C.DistributedDataParallel, opt: kirzl._C.optim.Optimizer | None = None, strict: bool = True) -> CheckpointInfo:
    """
    With a DistributedDataParallel: every rank reads a checkpoint written at any world size (a directory, or one file) into its module and optimizer, resharding; every rank loads, or every rank raises.
    """
def load_safetensors(path: str, max_header_bytes: typing.SupportsInt | typing.SupportsIndex = 100000000) -> tuple[dict, dict[str, str]]:
    """
    Reads a safetensors file: returns (dict of tensors, metadata dict). The file is validated as untrusted.
    """
def read_safetensors_header(path: str) -> str:
    """
    The JSON header of a safetensors file.
    """
def safetensors_dtype_name(dtype: typing.Any) -> str:
    """
    'F32', 'BF16', ... for a kirzl dtype.
    """
@typing.overload
def save_checkpoint(path: str, model: kirzl._C.nn.Module, opt: kirzl._C.optim.Optimizer | None = None, *, step: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, config: collections.abc.Mapping[str, str] = {}) -> None:
    """
    Writes model (and optimizer) state and the training position to a safetensors file, atomically.
    """
@typing.overload
def save_checkpoint(path: str, model: kirzl._C.DistributedDataParallel, opt: kirzl._C.optim.Optimizer | None = None, *, step: typing.SupportsInt | typing.SupportsIndex = 0, epoch: typing.SupportsInt | typing.SupportsIndex = 0, config: collections.abc.Mapping[str, str] = {}) -> None:
    """
    With a DistributedDataParallel: every rank writes its share (its ZeRO shard of the optimizer state) into the directory `path`, committed atomically; it loads at any world size and shard setting.
    """
def save_safetensors(path: str, tensors: typing.Any, metadata: collections.abc.Mapping[str, str] = {}) -> None:
    """
    Writes a dict of tensors (or NumPy arrays) as a safetensors file, atomically.
    """
kCheckpointFormat: str = 'kirzl-checkpoint-1'
