#include "args.hpp"

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace kirzl::examples {

namespace fs = std::filesystem;

namespace {

// "'text'" for messages; an empty value shows as ''.
std::string quoted(const std::string& text) { return "'" + text + "'"; }

[[noreturn]] void bad_value(const std::string& flag, const std::string& text, const std::string& expected) {
  throw ArgsError(flag + " " + quoted(text) + ": expected " + expected);
}

std::string range_text(int64_t min, int64_t max) {
  const bool has_min = min != std::numeric_limits<int64_t>::min(), has_max = max != std::numeric_limits<int64_t>::max();
  if (has_min && has_max) return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (has_min) return "an integer >= " + std::to_string(min);
  if (has_max) return "an integer <= " + std::to_string(max);
  return "an integer";
}

}  // namespace

// std::from_chars: base 10 only, no leading '+' or spaces, no locale; the whole text must be used.
int64_t parse_int(const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && p == end && (v < min || v > max)))
    bad_value(flag, text, range_text(min, max));
  if (ec != std::errc() || p != end) bad_value(flag, text, range_text(min, max));
  return v;
}

uint64_t parse_uint(const std::string& flag, const std::string& text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);  // rejects a '-': no wrap-around of "-1"
  if (ec != std::errc() || p != end) bad_value(flag, text, "an integer in [0, " + std::to_string(UINT64_MAX) + "]");
  return v;
}

double parse_double(const std::string& flag, const std::string& text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v, std::chars_format::general);
  if (ec != std::errc() || p != end || !std::isfinite(v)) bad_value(flag, text, "a finite number");
  return v;
}

// One flag: CLI11 stores its (last) text in `raw`; convert() sets the example's field from it.
struct FlagParser::Flag {
  std::string name, raw;
  CLI::Option* option = nullptr;
  std::function<void(const std::string&)> convert;
};

FlagParser::FlagParser(const std::string& program, const std::string& description)
    : app_(std::make_unique<CLI::App>(description, program)) {
  // Unknown flags and stray words are left over and reported by parse() with kirzl's wording.
  app_->allow_extras();
  app_->get_formatter()->column_width(34);
}

FlagParser::~FlagParser() = default;

void FlagParser::add(const std::string& flag, const std::string& help, const std::string& type,
                     const std::string& default_text, std::function<void(const std::string&)> convert) {
  auto f = std::make_unique<Flag>();
  f->name = flag;
  f->convert = std::move(convert);
  f->option = app_->add_option(flag, f->raw, help)
                  ->type_name(type)
                  ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (!default_text.empty()) f->option->default_str(default_text);
  f->option->option_text(type + (default_text.empty() ? "" : " [default: " + default_text + "]"));
  flags_.push_back(std::move(f));
}

void FlagParser::add_int(const std::string& flag, int64_t& target, const std::string& help, int64_t min, int64_t max,
                         const std::string& default_text) {
  add(flag, help, "INT", default_text.empty() ? std::to_string(target) : default_text,
      [&target, flag, min, max](const std::string& s) { target = parse_int(flag, s, min, max); });
}

void FlagParser::add_int(const std::string& flag, int& target, const std::string& help, int min, int max,
                         const std::string& default_text) {
  add(flag, help, "INT", default_text.empty() ? std::to_string(target) : default_text,
      [&target, flag, min, max](const std::string& s) { target = static_cast<int>(parse_int(flag, s, min, max)); });
}

void FlagParser::add_uint(const std::string& flag, uint64_t& target, const std::string& help) {
  add(flag, help, "UINT", std::to_string(target), [&target, flag](const std::string& s) { target = parse_uint(flag, s); });
}

void FlagParser::add_double(const std::string& flag, double& target, const std::string& help,
                            std::function<std::string(double)> check) {
  std::ostringstream d;
  d << target;  // %g-like: 0.001, 3e-04
  add(flag, help, "FLOAT", d.str(), [&target, flag, check = std::move(check)](const std::string& s) {
    const double v = parse_double(flag, s);
    if (std::string expected = check(v); !expected.empty()) bad_value(flag, s, expected);
    target = v;
  });
}

void FlagParser::add_choice(const std::string& flag, std::string& target, const std::string& help,
                            const std::vector<std::string>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  add(flag, help, list, target, [&target, flag, choices, list](const std::string& s) {
    for (const auto& c : choices)
      if (s == c) {
        target = s;
        return;
      }
    bad_value(flag, s, "one of " + list);
  });
}

void FlagParser::add_text(const std::string& flag, std::string& target, const std::string& help,
                          const std::string& default_text) {
  add(flag, help, "TEXT", target.empty() ? default_text : target, [&target](const std::string& s) { target = s; });
}

void FlagParser::parse(int argc, const char* const* argv) {
  // A harness may pass any argv: CLI11 reads argv[1..argc) as C strings, so those must exist.
  if (argc < 0 || (argc > 1 && argv == nullptr)) throw ArgsError("argc " + std::to_string(argc) + " without its argv");
  for (int i = 1; i < argc; ++i)
    if (argv[i] == nullptr) throw ArgsError("argv[" + std::to_string(i) + "] is null");
  // CLI11's vector form takes the words last first; its argv form reserves argc - 1 words, which
  // fails for argc 0.
  std::vector<std::string> words;
  for (int i = argc - 1; i >= 1; --i) words.emplace_back(argv[i]);
  try {
    app_->parse(words);
  } catch (const CLI::CallForHelp&) {
    throw HelpRequested(app_->help());
  } catch (const CLI::CallForAllHelp&) {
    throw HelpRequested(app_->help());
  } catch (const CLI::ParseError& e) {  // a flag without its value, and the like
    throw ArgsError(e.what());
  }
  // Values first: in "--epochs --lr 1" CLI11 gives --epochs the value "--lr", and that is the
  // mistake to name, not the stray "1".
  for (const auto& f : flags_)
    if (f->option->count() > 0) f->convert(f->raw);
  for (const std::string& extra : app_->remaining()) {
    if (extra.size() > 1 && extra[0] == '-') throw ArgsError("unknown flag " + extra + " (see --help)");
    throw ArgsError("unexpected argument " + quoted(extra) + " (see --help)");
  }
}

bool FlagParser::given(const std::string& flag) const {
  for (const auto& f : flags_)
    if (f->name == flag) return f->option->count() > 0;
  return false;
}

// ---- paths ----

namespace {

std::string system_reason(const std::error_code& ec) { return ec ? ": " + ec.message() : ""; }

// Whether this process can create a file in `dir`: by creating (and removing) one, since access(2)
// answers yes to root for directories it cannot write (/proc, a read-only bind mount in some
// containers).
bool dir_writable(const fs::path& dir) {
  std::string name = (dir / ".kirzl_write_probe_XXXXXX").string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(name.c_str());
  return true;
}

// Whether this process can write the existing file `p`: by opening it for appending (nothing is
// written, nothing truncated).
bool file_writable(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

void check_output_file(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) throw ArgsError(flag + " " + quoted(path) + ": is a directory, expected a file path");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    throw ArgsError(flag + " " + quoted(path) + ": the directory " + quoted(dir.string()) + " does not exist");
  // The examples write atomically (a temporary file in the same directory, then a rename), so the
  // directory must be writable even when the file already is.
  if (!dir_writable(dir))
    throw ArgsError(flag + " " + quoted(path) + ": the directory " + quoted(dir.string()) + " is not writable");
  if (fs::exists(p, ec)) {
    if (!fs::is_regular_file(p, ec)) throw ArgsError(flag + " " + quoted(path) + ": exists and is not a regular file");
    if (!file_writable(p)) throw ArgsError(flag + " " + quoted(path) + ": exists and is not writable");
  }
}

void make_output_dir(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw ArgsError(flag + " " + quoted(path) + ": cannot create the directory" + system_reason(ec));
  if (!fs::is_directory(path, ec)) throw ArgsError(flag + " " + quoted(path) + ": exists and is not a directory");
  if (!dir_writable(path)) throw ArgsError(flag + " " + quoted(path) + ": the directory is not writable");
}

void check_input_file(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ArgsError(flag + " " + quoted(path) + ": no such file");
  if (!fs::is_regular_file(path, ec)) throw ArgsError(flag + " " + quoted(path) + ": is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) throw ArgsError(flag + " " + quoted(path) + ": is not readable");
}

void check_input_dir(const std::string& flag, const std::string& path, const std::string& hint) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    throw ArgsError(flag + " " + quoted(path) + ": no such directory" + (hint.empty() ? "" : " (" + hint + ")"));
}

// ---- checkpoints ----

CheckpointForm checkpoint_form(int world_size, const std::string& shard) {
  return world_size > 1 || shard != "none" ? CheckpointForm::directory : CheckpointForm::file;
}

const std::vector<std::string>& shard_choices() {
  static const std::vector<std::string> choices = {"none", "optimizer", "gradients"};
  return choices;
}

namespace {

// The names a sharded checkpoint directory holds (see is_checkpoint_entry in
// src/io/sharded_checkpoint_save.cpp, which refuses to replace a directory with anything else).
bool checkpoint_entry(const std::string& name) {
  if (name == "index.json" || name == "COMPLETE") return true;
  if (!name.empty() && name[0] == '.') return name.find(".tmp.") != std::string::npos;
  const std::string ext = ".safetensors";
  return name.rfind("shard-", 0) == 0 && name.size() > ext.size() &&
         name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
}

}  // namespace

void check_output_checkpoint_dir(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  if (fs::exists(p, ec)) {
    if (!fs::is_directory(p, ec))
      throw ArgsError(flag + " " + quoted(path) + ": exists and is not a directory (with more than one rank or "
                      "--shard, the checkpoint is a directory)");
    for (const auto& e : fs::directory_iterator(p, ec))
      if (!checkpoint_entry(e.path().filename().string()))
        throw ArgsError(flag + " " + quoted(path) + ": exists and is not a checkpoint directory (it holds " +
                        quoted(e.path().filename().string()) + "); the checkpoint would replace it");
    if (ec) throw ArgsError(flag + " " + quoted(path) + ": cannot list the directory" + system_reason(ec));
  }
  // The new checkpoint is written into <path>.incoming and renamed over <path>: the parent must
  // be writable.
  const fs::path normal = p.lexically_normal();
  const fs::path parent = normal.has_relative_path() && normal.filename().empty() ? normal.parent_path().parent_path()
                                                                                  : normal.parent_path();
  const fs::path dir = parent.empty() ? fs::path(".") : parent;
  if (!fs::is_directory(dir, ec))
    throw ArgsError(flag + " " + quoted(path) + ": the directory " + quoted(dir.string()) + " does not exist");
  if (!dir_writable(dir))
    throw ArgsError(flag + " " + quoted(path) + ": the directory " + quoted(dir.string()) + " is not writable");
}

void check_input_checkpoint(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ArgsError(flag + " " + quoted(path) + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    if (::access(path.c_str(), R_OK | X_OK) != 0) throw ArgsError(flag + " " + quoted(path) + ": is not readable");
    return;
  }
  if (!fs::is_regular_file(path, ec))
    throw ArgsError(flag + " " + quoted(path) + ": is neither a regular file nor a directory");
  if (::access(path.c_str(), R_OK) != 0) throw ArgsError(flag + " " + quoted(path) + ": is not readable");
}

}  // namespace kirzl::examples
