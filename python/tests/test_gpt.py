"""kirzl.models.GPT from Python: configs, shapes, tying, sampling, GPT-2 safetensors files written by
Python (checked against a NumPy forward pass written here), tokenizers and token shards."""
import math

import numpy as np
import pytest

import kirzl
from kirzl import data, models, optim


def tokens(shape, vocab, seed):
    return np.random.default_rng(seed).integers(0, vocab, size=shape, dtype=np.int64)


def test_presets_and_parameter_counts():
    assert models.GPTConfig.gpt2_124m().num_parameters() == 124_439_808
    assert models.GPTConfig.preset("gpt2-medium").num_parameters() == 354_823_168
    assert models.GPTConfig.gpt2_1558m().n_head == 25
    assert models.GPTConfig.gpt2_124m().padded_vocab_size() == 50304
    assert models.GPTConfig(vocab_size=100, vocab_padding=1).padded_vocab_size() == 100
    c = models.GPTConfig.tiny()
    assert c.vocab_padding == 128 and c.padded_vocab_size() == 128
    m = models.GPT(c)
    assert m.num_parameters() == c.num_parameters()  # the padding rows are not counted
    assert tuple(m.wte.weight.shape) == (128, 32)
    assert sum(p.numel() for p in m.parameters()) == c.num_parameters() + (128 - 64) * 32
    with pytest.raises(kirzl.InvalidArgumentError, match="n_head"):
        models.GPT(models.GPTConfig(n_embd=30, n_head=4))


def test_forward_loss_and_tied_embedding():
    kirzl.manual_seed(0)
    m = models.GPT(models.GPTConfig.tiny())
    idx = tokens((2, 5), 64, 1)
    assert tuple(m(idx).shape) == (2, 5, 64)
    names = [n for n, _ in m.named_parameters()]
    assert names.count("wte.weight") == 1 and not any("lm_head" in n for n in names)
    loss = m.loss(idx, tokens((2, 5), 64, 2))
    assert abs(loss.item() - math.log(64)) < 0.1
    opt = optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    first = None
    for _ in range(30):
        loss = m.loss(idx, tokens((2, 5), 64, 2))
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 1.0
    with pytest.raises(kirzl.InvalidArgumentError, match="block_size"):
        m(tokens((1, 17), 64, 3))
    # The fused path gives the same loss (tiny() has no dropout).
    idx, tgt = tokens((2, 7), 64, 4), tokens((2, 7), 64, 5)
    assert abs(m.fused_loss(idx, tgt).item() - m.loss(idx, tgt).item()) < 1e-5


def test_generate_is_deterministic_for_a_seed():
    kirzl.manual_seed(1)
    m = models.GPT(models.GPTConfig.tiny())
    prompt = tokens((1, 3), 64, 4)
    a = m.generate(prompt, 12, temperature=1.0, top_k=10, generator=kirzl.Generator(7)).numpy()
    b = m.generate(prompt, 12, temperature=1.0, top_k=10, generator=kirzl.Generator(7)).numpy()
    c = m.generate(prompt, 12, temperature=1.0, top_k=10, generator=kirzl.Generator(8)).numpy()
    assert a.shape == (1, 15) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[:, :3], prompt)


def test_save_and_load_round_trip(tmp_path):
    kirzl.manual_seed(2)
    a = models.GPT(models.GPTConfig.tiny())
    path = str(tmp_path / "gpt.safetensors")
    models.save_gpt2_safetensors(path, a)
    assert models.gpt2_config_from_safetensors(path) == models.GPTConfig.tiny()
    b = models.load_gpt2(path)
    idx = tokens((2, 7), 64, 5)
    assert np.array_equal(a(idx).detach().numpy(), b(idx).detach().numpy())
    sd = models.gpt2_state_dict(a)
    assert tuple(sd["h.0.attn.c_attn.weight"].shape) == (32, 96)  # Conv1D [in, out]
    # The vocabulary padding is the model's, not the file's: [vocab_size, n_embd] on disk, and the
    # same weights in an unpadded model give the same logits and losses.
    assert tuple(sd["wte.weight"].shape) == (64, 32) and tuple(a.wte.weight.shape) == (128, 32)
    unpadded = models.GPTConfig.tiny()
    unpadded.vocab_padding = 1
    u = models.GPT(unpadded)
    models.load_gpt2_state_dict(u, sd)
    assert tuple(u.wte.weight.shape) == (64, 32)
    np.testing.assert_allclose(u(idx).detach().numpy(), a(idx).detach().numpy(), rtol=1e-5, atol=1e-6)
    tgt = tokens((2, 7), 64, 6)
    assert abs(u.loss(idx, tgt).item() - a.loss(idx, tgt).item()) < 1e-5
    assert abs(u.fused_loss(idx, tgt).item() - a.fused_loss(idx, tgt).item()) < 1e-5


# ---- a GPT-2 file written by Python, and a NumPy GPT-2 forward pass ----

def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def numpy_gpt2(w, idx, n_layer, n_head):
    """GPT-2 as transformers computes it, with Conv1D weights [in, out]: y = x @ W + b."""
    T = idx.shape[1]
    x = w["wte.weight"][idx] + w["wpe.weight"][:T]
    C = x.shape[-1]
    D = C // n_head
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for i in range(n_layer):
        p = f"h.{i}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        heads = lambda t: t.reshape(t.shape[0], T, n_head, D).transpose(0, 2, 1, 3)
        q, k, v = heads(q), heads(k), heads(v)
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
        att = np.where(mask, -np.inf, att)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        h = gelu_tanh(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    return x @ w["wte.weight"].T


def test_gpt2_file_written_by_python_gives_numpy_logits(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    c = models.GPTConfig.tiny()
    V, T, L, C = c.vocab_size, c.block_size, c.n_layer, c.n_embd
    rng = np.random.default_rng(0)
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)
    w = {"wte.weight": r(V, C), "wpe.weight": r(T, C), "ln_f.weight": 1 + r(C), "ln_f.bias": r(C)}
    for i in range(L):
        p = f"h.{i}."
        w |= {p + "ln_1.weight": 1 + r(C), p + "ln_1.bias": r(C), p + "ln_2.weight": 1 + r(C), p + "ln_2.bias": r(C),
              p + "attn.c_attn.weight": r(C, 3 * C), p + "attn.c_attn.bias": r(3 * C),
              p + "attn.c_proj.weight": r(C, C), p + "attn.c_proj.bias": r(C),
              p + "mlp.c_fc.weight": r(C, 4 * C), p + "mlp.c_fc.bias": r(4 * C),
              p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C)}
    # As transformers' GPT2LMHeadModel saves it: "transformer." prefix, the mask buffer, the tied head.
    stored = {"transformer." + k: v for k, v in w.items()}
    stored["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, T, T), np.float32))
    stored["lm_head.weight"] = w["wte.weight"]
    path = str(tmp_path / "hf_gpt2.safetensors")
    st.save_file(stored, path, metadata={"format": "pt"})

    m = models.GPT(c)
    models.load_gpt2_safetensors(path, m)
    m.eval()
    idx = tokens((2, 11), V, 6)
    got = m(idx).detach().numpy()
    want = numpy_gpt2({k: v.astype(np.float64) for k, v in w.items()}, idx, L, c.n_head)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The config is inferred from the shapes when the file has no kirzl metadata.
    assert models.gpt2_config_from_safetensors(path, n_head=2) == c

    # bf16 / f16 files load too (as transformers writes them with torch_dtype=...).
    st.save_file({k: v.astype(np.float16) for k, v in stored.items()}, path)
    m16 = models.GPT(c)
    models.load_gpt2_safetensors(path, m16)
    np.testing.assert_allclose(m16(idx).detach().numpy(), want, rtol=0, atol=0.1)

    # A transposed (Linear-layout) projection is named with the shape it should have.
    bad = dict(stored)
    bad["transformer.h.1.mlp.c_fc.weight"] = w["h.1.mlp.c_fc.weight"].T.copy()
    st.save_file(bad, path)
    with pytest.raises(kirzl.InvalidArgumentError, match=r"h\.1\.mlp\.c_fc\.weight \(expected \[32, 128\]"):
        models.load_gpt2_safetensors(path, m)


def test_tokenizers_and_token_shards(tmp_path):
    text = "Fortune: you will write a GPT.\n%\nCaf\u00e9 \u00e0 la carte.\n"
    tok = data.CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert data.Tokenizer.deserialize(tok.serialize()).encode("GPT") == tok.encode("GPT")
    assert data.ByteTokenizer().encode("\u00e9") == [0xC3, 0xA9]
    path = str(tmp_path / "t.tok")
    data.write_token_shard(path, ids, tok.vocab_size)
    arr, vocab = data.read_token_shard(path)
    assert arr.dtype == np.uint16 and arr.tolist() == ids and vocab == tok.vocab_size
    with open(path, "r+b") as f:
        f.write(b"NOTTOKEN")
    with pytest.raises(kirzl.IoError, match="bad magic"):
        data.read_token_shard(path)
