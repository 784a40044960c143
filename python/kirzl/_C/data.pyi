"""
Datasets, samplers and the DataLoader.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
import numpy
import numpy.typing
import typing
__all__: list[str] = ['ByteTokenizer', 'CharTokenizer', 'DataLoader', 'Dataset', 'DistributedSampler', 'FashionMNIST', 'MnistDataset', 'RandomSampler', 'Sampler', 'SequentialSampler', 'Split', 'TensorDataset', 'Tokenizer', 'gather_rows', 'kFashionMnistDir', 'read_idx', 'read_token_shard', 'write_token_shard']
class Split:
    """
    Members:
    
      Train
    
      Test
    """
    Test: typing.ClassVar[Split]
    Train: typing.ClassVar[Split]
    __members__: typing.ClassVar[dict[str, Split]]
    @typing.overload
    def __eq__(self, other: Split) -> bool:
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
    def __ne__(self, other: Split) -> bool:
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
class Dataset:
    """
    An indexed collection of (input, target) examples. Subclass it in Python by defining size() and
    get(index) -> (input, target) (tensors or NumPy arrays); the DataLoader's prefetch thread calls
    them with the GIL taken.
    """
    def __getitem__(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> tuple:
        ...
    def __init__(self) -> None:
        ...
    def __len__(self) -> int:
        ...
    def get(self, index: typing.SupportsInt | typing.SupportsIndex) -> tuple:
        """
        Example `index` as (input, target).
        """
    def get_batch(self, indices: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> tuple:
        """
        The examples at `indices`, stacked.
        """
    def size(self) -> int:
        """
        Number of examples (or indices per epoch for samplers).
        """
class TensorDataset(Dataset):
    """
    Example i is (inputs[i], targets[i]); NumPy arrays are shared, not copied.
    """
    def __init__(self, inputs: typing.Any, targets: typing.Any) -> None:
        ...
    def inputs(self) -> kirzl._C.Tensor:
        """
        The inputs tensor (a handle, no copy).
        """
    def targets(self) -> kirzl._C.Tensor:
        """
        The targets tensor (a handle, no copy).
        """
class MnistDataset(TensorDataset):
    """
    MNIST-layout IDX files as f32 [N,1,28,28] / i64 [N].
    """
    def __init__(self, dir: str, split: typing.Any = 'train', normalize: bool = True, mean: typing.SupportsFloat | typing.SupportsIndex = 0.28600001335144043, std: typing.SupportsFloat | typing.SupportsIndex = 0.3529999852180481, limit: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class FashionMNIST(MnistDataset):
    """
    Fashion-MNIST (ten classes of clothing).
    """
    @staticmethod
    def class_names() -> list[str]:
        """
        The ten Fashion-MNIST class names.
        """
    def __init__(self, dir: str = '/usr/share/datasets/fashion-mnist', split: typing.Any = 'train', normalize: bool = True, mean: typing.SupportsFloat | typing.SupportsIndex = 0.28600001335144043, std: typing.SupportsFloat | typing.SupportsIndex = 0.3529999852180481, limit: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class Sampler:
    """
    Produces the example indices of one epoch.
    """
    def __len__(self) -> int:
        ...
    def epoch(self) -> int:
        """
        The epoch set with set_epoch().
        """
    def indices(self) -> list[int]:
        """
        Indices of the current epoch, in visiting order.
        """
    def set_epoch(self, epoch: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Selects the epoch (reshuffles); call it at the start of every epoch.
        """
    def size(self) -> int:
        """
        Number of examples (or indices per epoch for samplers).
        """
class SequentialSampler(Sampler):
    """
    0, 1, ..., n-1.
    """
    def __init__(self, n: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class RandomSampler(Sampler):
    """
    A permutation of 0..n-1 seeded with seed + epoch.
    """
    def __init__(self, n: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class DistributedSampler(Sampler):
    """
    Gives rank r of W ranks the indices perm[r], perm[r + W], ... of one permutation shared by all
    ranks. DistributedSampler(n, world) with a ProcessGroup/Communicator, or DistributedSampler(n, rank, world_size).
    """
    def __init__(self, n: typing.SupportsInt | typing.SupportsIndex, group: typing.Any, world_size: typing.SupportsInt | typing.SupportsIndex | None = None, *, shuffle: bool = True, seed: typing.SupportsInt | typing.SupportsIndex = 0, drop_last: bool = False) -> None:
        ...
    def rank(self) -> int:
        """
        This sampler's rank.
        """
    def world_size(self) -> int:
        """
        Number of ranks the data is split over.
        """
class _DataLoaderIterator:
    def __iter__(self) -> typing.Any:
        ...
    def __next__(self) -> tuple:
        ...
class DataLoader:
    """
    Batches of a dataset, assembled ahead by a background thread: `for x, y in loader: ...`.
    Each iteration starts an epoch. The dataset (and sampler) are kept alive by the loader.
    """
    def __init__(self, dataset: Dataset, batch_size: typing.SupportsInt | typing.SupportsIndex = 1, shuffle: bool = False, seed: typing.SupportsInt | typing.SupportsIndex = 0, drop_last: bool = False, sampler: Sampler | None = None, prefetch: typing.SupportsInt | typing.SupportsIndex = 2) -> None:
        ...
    def __iter__(self) -> _DataLoaderIterator:
        ...
    def __len__(self) -> int:
        ...
    def num_batches(self) -> int:
        """
        Batches per epoch.
        """
    def num_examples(self) -> int:
        """
        Examples per epoch (after the sampler and drop_last).
        """
    def set_epoch(self, epoch: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Selects the epoch (reshuffles); call it at the start of every epoch.
        """
class Tokenizer:
    """
    Text <-> token ids (ids < 65536).
    """
    @staticmethod
    def deserialize(text: str) -> Tokenizer:
        ...
    @staticmethod
    def load(path: str) -> Tokenizer:
        ...
    def decode(self, ids: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> str:
        """
        The text of the ids.
        """
    def encode(self, text: str) -> list[int]:
        """
        The ids of the text (a list of ints).
        """
    def save(self, path: str) -> None:
        ...
    def serialize(self) -> str:
        """
        One line that deserialize() turns back into this tokenizer.
        """
    @property
    def kind(self) -> str:
        ...
    @property
    def vocab_size(self) -> int:
        ...
class ByteTokenizer(Tokenizer):
    """
    Each byte is a token (256).
    """
    def __init__(self) -> None:
        ...
class CharTokenizer(Tokenizer):
    """
    Each Unicode character is a token; the vocabulary is a corpus' characters, sorted.
    """
    @staticmethod
    def from_text(corpus: str) -> CharTokenizer:
        """
        The vocabulary of a UTF-8 corpus.
        """
    def __init__(self, vocabulary: collections.abc.Sequence[str]) -> None:
        ...
    @property
    def vocabulary(self) -> list[str]:
        ...
def gather_rows(t: kirzl._C.Tensor, indices: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> kirzl._C.Tensor:
    """
    Copies rows `indices` of `t` into a new contiguous tensor.
    """
def read_idx(path: str, max_bytes: typing.SupportsInt | typing.SupportsIndex = 4294967296) -> kirzl._C.Tensor:
    """
    Reads an IDX file (.gz or not) into a CPU tensor.
    """
def read_token_shard(path: str, max_vocab: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.uint16], int]:
    """
    (tokens as a NumPy uint16 array, vocab_size) of a token shard; raises kirzl.IoError naming the file for a corrupt one.
    """
def write_token_shard(path: str, tokens: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], vocab_size: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Writes uint16 tokens as a token shard (header: magic 'KZTOKENS', version 1, vocab_size, count), atomically.
    """
kFashionMnistDir: str = '/usr/share/datasets/fashion-mnist'
