"""
Collectives between ranks and the process-group bootstrap.
"""
from __future__ import annotations
import kirzl._C
import typing
__all__: list[str] = ['Communicator', 'ProcessGroup', 'ReduceOp', 'Work', 'init', 'make_in_process_group']
class ReduceOp:
    """
    Members:
    
      Sum
    
      Avg
    
      Min
    
      Max
    
      Prod
    """
    Avg: typing.ClassVar[ReduceOp]
    Max: typing.ClassVar[ReduceOp]
    Min: typing.ClassVar[ReduceOp]
    Prod: typing.ClassVar[ReduceOp]
    Sum: typing.ClassVar[ReduceOp]
    __members__: typing.ClassVar[dict[str, ReduceOp]]
    @typing.overload
    def __eq__(self, other: ReduceOp) -> bool:
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
    def __ne__(self, other: ReduceOp) -> bool:
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
class Work:
    """
    Handle of an asynchronous collective; wait() re-raises its failure.
    """
    def is_completed(self) -> bool:
        """
        True when the collective has finished (successfully or not). Never blocks.
        """
    def succeeded(self) -> bool:
        """
        True when it finished successfully.
        """
    def wait(self, timeout: typing.Any = None) -> None:
        """
        Blocks (GIL released) until done; timeout in seconds (None: the collective's own).
        """
class Communicator:
    """
    A group of ranks running collectives together. Methods are asynchronous and return a Work;
    tensors (or DLPack/NumPy arrays) are borrowed until the Work completes and are updated in place.
    """
    def all_gather(self, output: typing.Any, input: typing.Any, timeout: typing.Any = None, tag: str = '') -> Work:
        """
        Writes every rank's `input` into `output` (size() * input elements, rank r at offset r * input.numel); returns a Work.
        """
    def all_reduce(self, tensor: typing.Any, op: typing.Any = 'sum', timeout: typing.Any = None, tag: str = '') -> Work:
        """
        Reduces `tensor` (kirzl, NumPy or DLPack) over all ranks in place; returns a Work. `op`: sum, avg, min, max, prod.
        """
    def backend(self) -> str:
        """
        'inprocess', 'mpi', ...
        """
    def barrier(self, timeout: typing.Any = None, tag: str = '') -> Work:
        """
        Completes when every rank has called it; returns a Work.
        """
    def broadcast(self, tensor: typing.Any, root: typing.SupportsInt | typing.SupportsIndex = 0, timeout: typing.Any = None, tag: str = '') -> Work:
        """
        Copies rank `root`'s `tensor` into every rank's, in place; returns a Work.
        """
    def default_timeout(self) -> float:
        """
        Seconds.
        """
    def rank(self) -> int:
        """
        This rank's index.
        """
    def reduce_scatter(self, output: typing.Any, input: typing.Any, op: typing.Any = 'sum', timeout: typing.Any = None, tag: str = '') -> Work:
        """
        Reduces `input` (size() * output elements) over ranks and leaves rank r's share in `output`; returns a Work.
        """
    def size(self) -> int:
        """
        Number of ranks.
        """
    def split(self, color: typing.SupportsInt | typing.SupportsIndex, key: typing.SupportsInt | typing.SupportsIndex) -> Communicator:
        """
        Like MPI_Comm_split (collective; None for a negative color).
        """
class ProcessGroup:
    """
    The world: this process's rank, its device and the world communicator.
    """
    def __repr__(self) -> str:
        ...
    def backend(self) -> str:
        """
        'inprocess', 'mpi', ...
        """
    def communicator(self) -> Communicator:
        """
        The communicator (shared).
        """
    def hosts(self) -> list[str]:
        """
        Host name of every rank.
        """
    def launcher(self) -> str:
        """
        The launcher that was detected ('openmpi', 'slurm', ..., 'none').
        """
    def local_rank(self) -> int:
        """
        This process's index among the ranks on its node.
        """
    def local_size(self) -> int:
        """
        Number of ranks on this node.
        """
    def rank(self) -> int:
        """
        This rank's index.
        """
    def size(self) -> int:
        """
        Number of ranks.
        """
    @property
    def device(self) -> kirzl._C.Device:
        """
        CUDA:(local rank) when a GPU is there, else the CPU.
        """
def init(backend: str = 'auto', timeout: typing.Any = None) -> ProcessGroup:
    """
    Sets up the world once per process (mpirun/srun/plain) and returns it; later calls return the same group.
    """
def make_in_process_group(n: typing.SupportsInt | typing.SupportsIndex, timeout: typing.Any = None) -> list[Communicator]:
    """
    n communicators whose ranks are threads of this process (drive each from its own thread).
    """
