// The command-line parsing that the examples share (examples/args/): strict conversions of flag
// values, the two exceptions a parse ends with, and the up-front checks of the paths a run reads
// and writes.
//
// Note [pure example parsers]: parse_<example>_args() never prints, exits or touches the file
// system; it returns the flags or throws ArgsError / HelpRequested. The example's main() turns
// those into text and an exit code (run_example_main below), tests call the parsers directly, and
// a fuzz harness can call them with any argv. Path checks (check_*_paths) are separate because
// they do look at the file system, and because under MPI only some ranks make them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace kirzl::examples {

/// A flag or its value is wrong: the message names the flag, the value and what was expected.
class ArgsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Another rank's up-front check failed and that rank reports it; this rank stops without a
/// message (see Note [paths checked by every rank] in path_checks.hpp).
class StoppedByAnotherRank : public ArgsError {
 public:
  explicit StoppedByAnotherRank(int rank) : ArgsError("stopped: rank " + std::to_string(rank) + " found a bad path") {}
};

/// --help / -h was given: help() is the text to print (every flag with its default).
class HelpRequested : public std::exception {
 public:
  explicit HelpRequested(std::string help) : help_(std::move(help)) {}
  const std::string& help() const { return help_; }
  const char* what() const noexcept override { return "help requested"; }

 private:
  std::string help_;
};

/// Strict conversions (base 10, the whole text, no sign where the type has none, no overflow;
/// doubles finite). Throw ArgsError naming `flag` and `text`.
int64_t parse_int(const std::string& flag, const std::string& text, int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max());
uint64_t parse_uint(const std::string& flag, const std::string& text);
double parse_double(const std::string& flag, const std::string& text);

/// The flags of one program on top of CLI11, which splits the command line (--flag value and
/// --flag=value, help, missing values); the values are converted by kirzl's strict functions
/// above once the whole line is read, so that every message names the flag. A flag given twice
/// keeps its last value.
class FlagParser {
 public:
  FlagParser(const std::string& program, const std::string& description);
  ~FlagParser();
  FlagParser(const FlagParser&) = delete;
  FlagParser& operator=(const FlagParser&) = delete;

  /// An integer flag in [min, max]; `default_text` (empty: the target's value) is shown in --help.
  void add_int(const std::string& flag, int64_t& target, const std::string& help, int64_t min,
               int64_t max = std::numeric_limits<int64_t>::max(), const std::string& default_text = "");
  void add_int(const std::string& flag, int& target, const std::string& help, int min,
               int max = std::numeric_limits<int>::max(), const std::string& default_text = "");
  void add_uint(const std::string& flag, uint64_t& target, const std::string& help);
  /// A finite double that `check` accepts; `check` returns "" or what was expected ("> 0").
  void add_double(const std::string& flag, double& target, const std::string& help,
                  std::function<std::string(double)> check);
  /// One of `choices`.
  void add_choice(const std::string& flag, std::string& target, const std::string& help,
                  const std::vector<std::string>& choices);
  /// Any text (a path, a prompt); `default_text` is shown in --help when the target is empty.
  void add_text(const std::string& flag, std::string& target, const std::string& help,
                const std::string& default_text = "");

  /// Reads argv[1..argc): throws HelpRequested, or ArgsError for an unknown flag, a missing or
  /// wrong value. Sets only the targets of the flags given.
  void parse(int argc, const char* const* argv);
  /// Whether `flag` was on the command line (after parse()).
  bool given(const std::string& flag) const;

 private:
  struct Flag;
  void add(const std::string& flag, const std::string& help, const std::string& type, const std::string& default_text,
           std::function<void(const std::string&)> convert);
  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Flag>> flags_;
};

/// Up-front checks of the paths a run will use, so that a wrong path stops it before the first
/// epoch rather than after it. Each throws ArgsError naming the flag and the path.
/// An output file: its directory exists and is writable, and the file, if it exists, is a
/// writable regular file. Empty path: nothing to check.
void check_output_file(const std::string& flag, const std::string& path);
/// A directory the run writes into: created now if missing (as the run would), then checked
/// writable. Empty path: nothing to do.
void make_output_dir(const std::string& flag, const std::string& path);
/// An input file: exists, is a regular file and readable. Empty path: nothing to check.
void check_input_file(const std::string& flag, const std::string& path);
/// An input directory: exists and is a directory; `hint` (may be empty) is added to the message.
void check_input_dir(const std::string& flag, const std::string& path, const std::string& hint);

/// How an example writes --checkpoint (Note [checkpoint forms]).
enum class CheckpointForm {
  file,       ///< one safetensors file, written by the only rank (io::save_checkpoint(path, model, opt))
  directory,  ///< a directory every rank writes its share into (io::save_checkpoint(dir, ddp, opt))
};
/// Note [checkpoint forms]: one process without sharding writes one plain file, as the examples
/// always did; more than one rank or a --shard other than none writes a directory (a sharded
/// checkpoint, docs/checkpoints.md), every rank writing its own share, so no rank gathers the
/// whole optimizer state. --resume reads either form at any world size and any --shard.
CheckpointForm checkpoint_form(int world_size, const std::string& shard);
/// "none", "optimizer", "gradients": the values of the examples' --shard flag (those of
/// kirzl::Shard, DDPOptions::shard).
const std::vector<std::string>& shard_choices();

/// A checkpoint directory the run writes (and replaces as a whole at every save): if it exists it
/// is a directory that holds only a checkpoint's files (shard-*.safetensors, index.json, COMPLETE),
/// and the directory it is in exists and is writable (the new checkpoint is assembled next to it).
/// Nothing is created. Empty path: nothing to check.
void check_output_checkpoint_dir(const std::string& flag, const std::string& path);
/// A checkpoint to read: a readable regular file or a directory. Empty path: nothing to check.
void check_input_checkpoint(const std::string& flag, const std::string& path);

/// The part of an example's main() that handles its flags: parse(argc, argv), then run(args).
/// HelpRequested prints the help to stdout and returns 0; ArgsError (from the parse, or from path
/// checks inside run) prints "<program>: <message>" as one line to stderr and returns 2;
/// StoppedByAnotherRank returns 2 without a message.
template <class Args, class Parse, class Run>
int run_example_main(const char* program, int argc, const char* const* argv, Parse parse, Run run) {
  try {
    const Args args = parse(argc, argv);
    return run(args);
  } catch (const HelpRequested& h) {
    std::fputs(h.help().c_str(), stdout);
    return 0;
  } catch (const StoppedByAnotherRank&) {
    return 2;
  } catch (const ArgsError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 2;
  }
}

}  // namespace kirzl::examples
