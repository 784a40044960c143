"""
The Fashion-MNIST models of the examples and benchmarks.
"""
from __future__ import annotations
import collections.abc
import kirzl._C
import kirzl._C.nn
import typing
__all__: list[str] = ['GPT', 'GPTConfig', 'fashion_cnn', 'fashion_mlp', 'gpt2_config_from_safetensors', 'gpt2_state_dict', 'load_gpt2_safetensors', 'load_gpt2_state_dict', 'save_gpt2_safetensors']
class GPTConfig:
    """
    The shape of a GPT-2 model (plain data).
    """
    __hash__: typing.ClassVar[None] = None
    bias: bool
    @staticmethod
    def gpt2_124m() -> GPTConfig:
        """
        GPT-2 small: 12 layers, 12 heads, 768 wide.
        """
    @staticmethod
    def gpt2_1558m() -> GPTConfig:
        """
        GPT-2 XL: 48 layers, 25 heads, 1600 wide.
        """
    @staticmethod
    def gpt2_350m() -> GPTConfig:
        """
        GPT-2 medium: 24 layers, 16 heads, 1024 wide.
        """
    @staticmethod
    def gpt2_774m() -> GPTConfig:
        """
        GPT-2 large: 36 layers, 20 heads, 1280 wide.
        """
    @staticmethod
    def preset(name: str) -> GPTConfig:
        """
        The preset named '124m'/'gpt2', '350m'/'gpt2-medium', '774m'/'gpt2-large', '1558m'/'gpt2-xl' or 'tiny'.
        """
    @staticmethod
    def tiny() -> GPTConfig:
        """
        2 layers, 2 heads, 32 wide, 16 positions, 64 tokens: for tests.
        """
    def __eq__(self, arg0: GPTConfig) -> bool:
        ...
    def __init__(self, vocab_size: typing.SupportsInt | typing.SupportsIndex = 50257, block_size: typing.SupportsInt | typing.SupportsIndex = 1024, n_layer: typing.SupportsInt | typing.SupportsIndex = 12, n_head: typing.SupportsInt | typing.SupportsIndex = 12, n_embd: typing.SupportsInt | typing.SupportsIndex = 768, dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, bias: bool = True, vocab_padding: typing.SupportsInt | typing.SupportsIndex = 128) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def num_parameters(self) -> int:
        """
        The parameter count of GPT(config) without building it (tied embeddings counted once, vocabulary padding not counted).
        """
    def padded_vocab_size(self) -> int:
        """
        The rows of wte: vocab_size rounded up to a multiple of vocab_padding (50257 -> 50304).
        """
    def to_dict(self) -> dict[str, str]:
        """
        The fields as strings (as stored in file metadata).
        """
    def validate(self) -> None:
        """
        Raises kirzl.InvalidArgumentError for an inconsistent config.
        """
    @property
    def block_size(self) -> int:
        ...
    @block_size.setter
    def block_size(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def dropout(self) -> float:
        ...
    @dropout.setter
    def dropout(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def n_embd(self) -> int:
        ...
    @n_embd.setter
    def n_embd(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def n_head(self) -> int:
        ...
    @n_head.setter
    def n_head(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def n_layer(self) -> int:
        ...
    @n_layer.setter
    def n_layer(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def vocab_padding(self) -> int:
        """
        wte is allocated with vocab_size rounded up to a multiple of this (1: none); the padding is invisible: logits are [.., vocab_size], padded ids are never targets or samples, num_parameters() leaves them out, GPT-2 files hold [vocab_size, n_embd].
        """
    @vocab_padding.setter
    def vocab_padding(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def vocab_size(self) -> int:
        ...
    @vocab_size.setter
    def vocab_size(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class GPT(kirzl._C.nn.Module):
    """
    GPT-2: token and learned position embeddings, pre-LayerNorm blocks with causal self-attention and
    a GELU MLP, a final LayerNorm, and an output layer tied to the token embedding ("wte.weight" is
    one parameter). Parameter names are GPT-2's. Initialised from the default generator
    (kirzl.manual_seed): N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)). "wte.weight" is
    [padded_vocab_size, n_embd] (config.vocab_padding): its padding rows are zero and stay zero, and
    no logit, loss, sample, parameter count or GPT-2 file shows them.
    """
    def __call__(self, idx: typing.Any) -> kirzl._C.Tensor:
        """
        The forward pre-hooks, then forward(idx).
        """
    def __init__(self, config: GPTConfig) -> None:
        ...
    def forward(self, idx: typing.Any) -> kirzl._C.Tensor:
        """
        Logits [B, T, vocab_size] for token ids [B, T] (i64/i32; [T] gives [T, vocab_size]).
        """
    def fused_loss(self, idx: typing.Any, targets: typing.Any) -> kirzl._C.Tensor:
        """
        loss() through the fused ops (residual+LayerNorm, bias+GELU, classifier+cross-entropy); no dropout.
        """
    def generate(self, idx: typing.Any, max_new_tokens: typing.SupportsInt | typing.SupportsIndex, temperature: typing.SupportsFloat | typing.SupportsIndex = 1.0, top_k: typing.SupportsInt | typing.SupportsIndex = 0, generator: kirzl._C.Generator | None = None) -> kirzl._C.Tensor:
        """
        Appends max_new_tokens sampled tokens to each row of idx [B, T0]: temperature <= 0 is greedy, top_k = 0 keeps all tokens; one uniform draw per row and step from `generator` (the default one when None), so a seed gives the same text. Returns i64 [B, T0 + max_new_tokens].
        """
    def loss(self, idx: typing.Any, targets: typing.Any) -> kirzl._C.Tensor:
        """
        Mean cross-entropy (nats) of forward(idx) against targets [B, T].
        """
    @property
    def config(self) -> GPTConfig:
        ...
    @property
    def h(self) -> kirzl._C.nn.ModuleList:
        ...
    @property
    def ln_f(self) -> kirzl._C.nn.LayerNorm:
        ...
    @property
    def wpe(self) -> kirzl._C.nn.Embedding:
        ...
    @property
    def wte(self) -> kirzl._C.nn.Embedding:
        ...
def fashion_cnn() -> kirzl._C.nn.Sequential:
    """
    conv32-pool-conv64-pool-fc128-fc10.
    """
def fashion_mlp() -> kirzl._C.nn.Sequential:
    """
    Flatten, 784-256-128-10 with ReLU.
    """
def gpt2_config_from_safetensors(path: str, n_head: typing.SupportsInt | typing.SupportsIndex = 0) -> GPTConfig:
    """
    The config of a GPT-2 file: its 'gpt.*' metadata, else inferred from the shapes (n_head: given, else n_embd/64).
    """
def gpt2_state_dict(model: GPT) -> dict:
    """
    The weights under GPT-2's names and layout (the four projections per block as Conv1D [in, out] copies; wte.weight [vocab_size, n_embd], without the padding rows).
    """
def load_gpt2_safetensors(path: str, model: GPT) -> None:
    """
    Reads a GPT-2 safetensors file (F32/BF16/F16) into the model in place.
    """
def load_gpt2_state_dict(model: GPT, state_dict: typing.Any) -> None:
    """
    Loads GPT-2-named weights (with or without 'transformer.'; Conv1D layout) in place; raises naming every missing, unexpected or mis-shaped tensor before changing anything.
    """
def save_gpt2_safetensors(path: str, model: GPT, metadata: collections.abc.Mapping[str, str] = {}, dtype: typing.Any = 'f32') -> None:
    """
    Writes the model as a GPT-2 safetensors file (atomically), its config in the metadata.
    """
