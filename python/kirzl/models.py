"""kirzl.models (see the C++ header of the same name for the full contract of each entry)."""
from ._C.models import *  # noqa: F401,F403


def load_gpt2(path, n_head=0):
    """A GPT built from a GPT-2 safetensors file: the config from the file (its "gpt.*" metadata,
    else its shapes with n_head, default n_embd / 64), then the weights by name."""
    config = gpt2_config_from_safetensors(path, n_head)  # noqa: F405
    model = GPT(config)  # noqa: F405
    load_gpt2_safetensors(path, model)  # noqa: F405
    return model
