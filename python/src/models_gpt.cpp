// kirzl.models.GPT / GPTConfig and the GPT-2 weight files; kirzl.data's tokenizers and token
// shards. Called from module.cpp after init_nn (GPT derives from nn.Module) and init_data.
#include "common.h"

namespace kirzl::python {

void init_models_gpt(py::module_& top) {
  using models::GPT;
  using models::GPTConfig;
  py::module_ m = top.def_submodule("models");

  py::class_<GPTConfig>(m, "GPTConfig", "The shape of a GPT-2 model (plain data).")
      .def(py::init([](int64_t vocab_size, int64_t block_size, int64_t n_layer, int64_t n_head, int64_t n_embd,
                       double dropout, bool bias, int64_t vocab_padding) {
             return GPTConfig{vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias, vocab_padding};
           }),
           py::arg("vocab_size") = 50257, py::arg("block_size") = 1024, py::arg("n_layer") = 12, py::arg("n_head") = 12,
           py::arg("n_embd") = 768, py::arg("dropout") = 0.0, py::arg("bias") = true, py::arg("vocab_padding") = 128)
      .def_readwrite("vocab_size", &GPTConfig::vocab_size)
      .def_readwrite("block_size", &GPTConfig::block_size)
      .def_readwrite("n_layer", &GPTConfig::n_layer)
      .def_readwrite("n_head", &GPTConfig::n_head)
      .def_readwrite("n_embd", &GPTConfig::n_embd)
      .def_readwrite("dropout", &GPTConfig::dropout)
      .def_readwrite("bias", &GPTConfig::bias)
      .def_readwrite("vocab_padding", &GPTConfig::vocab_padding,
                     "wte is allocated with vocab_size rounded up to a multiple of this (1: none); the padding is "
                     "invisible: logits are [.., vocab_size], padded ids are never targets or samples, "
                     "num_parameters() leaves them out, GPT-2 files hold [vocab_size, n_embd].")
      .def_static("gpt2_124m", &GPTConfig::gpt2_124m, "GPT-2 small: 12 layers, 12 heads, 768 wide.")
      .def_static("gpt2_350m", &GPTConfig::gpt2_350m, "GPT-2 medium: 24 layers, 16 heads, 1024 wide.")
      .def_static("gpt2_774m", &GPTConfig::gpt2_774m, "GPT-2 large: 36 layers, 20 heads, 1280 wide.")
      .def_static("gpt2_1558m", &GPTConfig::gpt2_1558m, "GPT-2 XL: 48 layers, 25 heads, 1600 wide.")
      .def_static("tiny", &GPTConfig::tiny, "2 layers, 2 heads, 32 wide, 16 positions, 64 tokens: for tests.")
      .def_static("preset", &GPTConfig::preset, py::arg("name"),
                  "The preset named '124m'/'gpt2', '350m'/'gpt2-medium', '774m'/'gpt2-large', '1558m'/'gpt2-xl' or 'tiny'.")
      .def("padded_vocab_size", &GPTConfig::padded_vocab_size,
           "The rows of wte: vocab_size rounded up to a multiple of vocab_padding (50257 -> 50304).")
      .def("validate", &GPTConfig::validate, "Raises kirzl.InvalidArgumentError for an inconsistent config.")
      .def("num_parameters", &GPTConfig::num_parameters,
           "The parameter count of GPT(config) without building it (tied embeddings counted once, vocabulary "
           "padding not counted).")
      .def("to_dict", &GPTConfig::to_map, "The fields as strings (as stored in file metadata).")
      .def("__eq__", [](const GPTConfig& a, const GPTConfig& b) { return a == b; })
      .def("__repr__", &GPTConfig::str);

  py::class_<GPT, nn::Module, py::smart_holder>(m, "GPT", py::dynamic_attr(), R"doc(
GPT-2: token and learned position embeddings, pre-LayerNorm blocks with causal self-attention and
a GELU MLP, a final LayerNorm, and an output layer tied to the token embedding ("wte.weight" is
one parameter). Parameter names are GPT-2's. Initialised from the default generator
(kirzl.manual_seed): N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)). "wte.weight" is
[padded_vocab_size, n_embd] (config.vocab_padding): its padding rows are zero and stay zero, and
no logit, loss, sample, parameter count or GPT-2 file shows them.)doc")
      .def(py::init([](const GPTConfig& c) { return std::make_shared<GPT>(c); }), py::arg("config"))
      .def(
          "forward", [](GPT& g, const py::handle& idx) { return g.forward(to_tensor(idx)); }, py::arg("idx"),
          "Logits [B, T, vocab_size] for token ids [B, T] (i64/i32; [T] gives [T, vocab_size]).")
      .def(
          "__call__", [](GPT& g, const py::handle& idx) { return g(to_tensor(idx)); }, py::arg("idx"),
          "The forward pre-hooks, then forward(idx).")
      .def(
          "loss",
          [](GPT& g, const py::handle& idx, const py::handle& targets) {
            Tensor i = to_tensor(idx), t = to_tensor(targets);
            py::gil_scoped_release release;
            return g.loss(i, t);
          },
          py::arg("idx"), py::arg("targets"), "Mean cross-entropy (nats) of forward(idx) against targets [B, T].")
      .def(
          "fused_loss",
          [](GPT& g, const py::handle& idx, const py::handle& targets) {
            Tensor i = to_tensor(idx), t = to_tensor(targets);
            py::gil_scoped_release release;
            return g.fused_loss(i, t);
          },
          py::arg("idx"), py::arg("targets"),
          "loss() through the fused ops (residual+LayerNorm, bias+GELU, classifier+cross-entropy); no dropout.")
      .def(
          "generate",
          [](GPT& g, const py::handle& idx, int64_t max_new_tokens, double temperature, int64_t top_k,
             Generator* gen) {
            Tensor i = to_tensor(idx);
            py::gil_scoped_release release;
            return g.generate(i, max_new_tokens, temperature, top_k, gen);
          },
          py::arg("idx"), py::arg("max_new_tokens"), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
          py::arg("generator").none(true) = py::none(),
          "Appends max_new_tokens sampled tokens to each row of idx [B, T0]: temperature <= 0 is greedy, top_k = 0 "
          "keeps all tokens; one uniform draw per row and step from `generator` (the default one when None), so a "
          "seed gives the same text. Returns i64 [B, T0 + max_new_tokens].")
      .def_property_readonly("config", &GPT::config)
      .def_property_readonly("wte", [](const GPT& g) { return g.wte; })
      .def_property_readonly("wpe", [](const GPT& g) { return g.wpe; })
      .def_property_readonly("h", [](const GPT& g) { return g.h; })
      .def_property_readonly("ln_f", [](const GPT& g) { return g.ln_f; });

  m.def(
      "gpt2_state_dict", [](const GPT& g) { return state_dict_to_py(models::gpt2_state_dict(g)); }, py::arg("model"),
      "The weights under GPT-2's names and layout (the four projections per block as Conv1D [in, out] copies; "
      "wte.weight [vocab_size, n_embd], without the padding rows).");
  m.def(
      "load_gpt2_state_dict",
      [](GPT& g, const py::handle& d) { models::load_gpt2_state_dict(g, state_dict_from_py(d)); }, py::arg("model"),
      py::arg("state_dict"),
      "Loads GPT-2-named weights (with or without 'transformer.'; Conv1D layout) in place; raises naming every "
      "missing, unexpected or mis-shaped tensor before changing anything.");
  m.def(
      "save_gpt2_safetensors",
      [](const std::string& path, const GPT& g, const std::map<std::string, std::string>& meta, const py::handle& dt) {
        models::save_gpt2_safetensors(path, g, meta, dtype_from_py(dt));
      },
      py::arg("path"), py::arg("model"), py::arg("metadata") = std::map<std::string, std::string>{},
      py::arg("dtype") = "f32", "Writes the model as a GPT-2 safetensors file (atomically), its config in the metadata.");
  m.def("load_gpt2_safetensors", &models::load_gpt2_safetensors, py::arg("path"), py::arg("model"),
        "Reads a GPT-2 safetensors file (F32/BF16/F16) into the model in place.");
  m.def("gpt2_config_from_safetensors", &models::gpt2_config_from_safetensors, py::arg("path"), py::arg("n_head") = 0,
        "The config of a GPT-2 file: its 'gpt.*' metadata, else inferred from the shapes (n_head: given, else n_embd/64).");

  // ---- kirzl.data: tokenizers and token shards ----
  py::module_ d = top.def_submodule("data");
  py::class_<data::Tokenizer, std::shared_ptr<data::Tokenizer>>(d, "Tokenizer", "Text <-> token ids (ids < 65536).")
      .def_property_readonly("vocab_size", &data::Tokenizer::vocab_size)
      .def_property_readonly("kind", &data::Tokenizer::kind)
      .def("encode", &data::Tokenizer::encode, py::arg("text"), "The ids of the text (a list of ints).")
      .def(
          "decode", [](const data::Tokenizer& t, const std::vector<int64_t>& ids) { return t.decode(std::span<const int64_t>(ids)); },
          py::arg("ids"), "The text of the ids.")
      .def("serialize", &data::Tokenizer::serialize, "One line that deserialize() turns back into this tokenizer.")
      .def("save", &data::Tokenizer::save, py::arg("path"))
      .def_static(
          "deserialize", [](const std::string& s) { return std::shared_ptr<data::Tokenizer>(data::Tokenizer::deserialize(s)); },
          py::arg("text"))
      .def_static(
          "load", [](const std::string& p) { return std::shared_ptr<data::Tokenizer>(data::Tokenizer::load(p)); },
          py::arg("path"));
  py::class_<data::ByteTokenizer, data::Tokenizer, std::shared_ptr<data::ByteTokenizer>>(d, "ByteTokenizer",
                                                                                          "Each byte is a token (256).")
      .def(py::init<>());
  py::class_<data::CharTokenizer, data::Tokenizer, std::shared_ptr<data::CharTokenizer>>(
      d, "CharTokenizer", "Each Unicode character is a token; the vocabulary is a corpus' characters, sorted.")
      .def(py::init([](const std::vector<char32_t>& v) { return std::make_shared<data::CharTokenizer>(v); }),
           py::arg("vocabulary"))
      .def_static(
          "from_text", [](const std::string& s) { return std::make_shared<data::CharTokenizer>(data::CharTokenizer::from_text(s)); },
          py::arg("corpus"), "The vocabulary of a UTF-8 corpus.")
      .def_property_readonly("vocabulary", &data::CharTokenizer::vocabulary);

  d.def(
      "write_token_shard",
      [](const std::string& path, const std::vector<uint16_t>& tokens, uint32_t vocab_size) {
        data::write_token_shard(path, tokens, vocab_size);
      },
      py::arg("path"), py::arg("tokens"), py::arg("vocab_size"),
      "Writes uint16 tokens as a token shard (header: magic 'KZTOKENS', version 1, vocab_size, count), atomically.");
  d.def(
      "read_token_shard",
      [](const std::string& path, uint32_t max_vocab) {
        data::TokenShard s = data::read_token_shard(path, max_vocab);
        py::array_t<uint16_t> a(static_cast<py::ssize_t>(s.tokens.size()));
        if (!s.tokens.empty()) std::memcpy(a.mutable_data(), s.tokens.data(), s.tokens.size() * sizeof(uint16_t));
        return py::make_tuple(a, s.vocab_size);
      },
      py::arg("path"), py::arg("max_vocab") = 0,
      "(tokens as a NumPy uint16 array, vocab_size) of a token shard; raises kirzl.IoError naming the file for a "
      "corrupt one.");
}

}  // namespace kirzl::python
