// A rank of a small data-parallel job that injects one fault, for the fault tests
// (test_faults_mpi.cpp). Usage, under mpirun:
//   fault_worker --fault none|stop|stop-mid|kill|throw|mismatch|hang --rank R --step S --pid-dir DIR [--steps N]
//                [--elements E]
// Every rank writes its pid to DIR/rank<r>.pid, then runs N steps of an all-reduce of E floats
// (65536). At step S, rank R injects the fault:
//   stop      raise(SIGSTOP): the rank hangs (as a rank stuck in the kernel or a debugger would);
//   stop-mid  the same, 20 ms into the step's all-reduce (a rank stopped mid-way through the data);
//   kill      raise(SIGKILL): the rank vanishes without a word;
//   throw     an exception that the program does not catch;
//   mismatch  a broadcast where the other ranks all-reduce;
//   hang      sleeps for ever outside kirzl (alive: its communication thread still answers).
// Like the examples, main() reports a kirzl::Error and returns 1; other exceptions escape.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "kirzl/kirzl.hpp"

namespace {

struct Options {
  std::string fault = "none";
  int rank = 1;
  int step = 3;
  int steps = 50;
  int64_t elements = 1 << 16;
  std::string pid_dir = ".";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--fault") o.fault = value;
    else if (flag == "--rank") o.rank = std::atoi(value.c_str());
    else if (flag == "--step") o.step = std::atoi(value.c_str());
    else if (flag == "--steps") o.steps = std::atoi(value.c_str());
    else if (flag == "--pid-dir") o.pid_dir = value;
    else if (flag == "--elements") o.elements = std::atoll(value.c_str());
    else {
      std::fprintf(stderr, "fault_worker: unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

void inject(const Options& o, int rank, kirzl::comm::ProcessGroup& pg, kirzl::Tensor& grad) {
  std::fprintf(stderr, "fault_worker: rank %d injects '%s'\n", rank, o.fault.c_str());
  if (o.fault == "stop") raise(SIGSTOP);
  if (o.fault == "kill") raise(SIGKILL);
  if (o.fault == "throw") throw std::runtime_error("injected fault on rank " + std::to_string(rank));
  if (o.fault == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
  if (o.fault == "mismatch") pg.communicator()->broadcast(grad, {.root = 0, .tag = "mismatched"}).wait();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  auto pg = kirzl::comm::init();
  {
    std::ofstream(o.pid_dir + "/rank" + std::to_string(pg.rank()) + ".pid") << ::getpid() << "\n";
  }
  kirzl::Tensor grad = kirzl::ones({o.elements});
  try {
    for (int step = 1; step <= o.steps; ++step) {
      if (step == o.step && pg.rank() == o.rank && o.fault == "stop-mid") {
        std::fprintf(stderr, "fault_worker: rank %d injects 'stop-mid'\n", pg.rank());
        std::thread([] {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          raise(SIGSTOP);
        }).detach();
      } else if (step == o.step && pg.rank() == o.rank && o.fault != "none") {
        inject(o, pg.rank(), pg, grad);
        if (o.fault == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
  if (o.fault == "mismatch") continue;
      }
      pg.communicator()->all_reduce(grad, {.op = kirzl::comm::ReduceOp::Avg, .tag = "gradients"}).wait();
      ::usleep(20'000);  // the step's compute
    }
  } catch (const kirzl::Error& e) {
    std::fprintf(stderr, "fault_worker: rank %d failed: %s\n", pg.rank(), e.what());
    return 1;
  }
  std::printf("fault_worker: rank %d done\n", pg.rank());
  return 0;
}
