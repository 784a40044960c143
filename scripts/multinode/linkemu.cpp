// linkemu: the links between the emulated nodes of scripts/multinode.sh where the kernel has no
// sch_netem (Note [emulated nodes] there). Without netem, tc can limit a link's rate (tbf) but
// cannot delay it, so this process takes the place of the bridge: an Ethernet switch whose ports
// are TAP devices, which forwards frames by destination MAC address and holds each frame until the
// emulated link would have delivered it.
//
//   linkemu [--pidfile FILE] PORT...        PORT is NAME:DELAY:RATE, e.g. kzmn-n1:200us:1gbit
//
// Each PORT is a TAP device NAME (created, or attached when it exists) and the link behind it:
// DELAY is added once to every frame its interface sends (as netem would on that interface's
// egress), RATE limits each direction of the link separately; units as tc's ("200us", "1ms",
// "1gbit", "100mbit", "10gbps"), 0 for none. The TAPs are created down, with their default MTU;
// the caller moves, names, addresses and raises them (scripts/multinode.sh), also after the fds are
// attached: the fd stays bound to its device in whatever namespace the device is moved to. FILE is
// written once every port is attached (the caller's sign that it may set them up).
//
// The model of a frame of L bytes that port A's interface sends at time t to port B's:
//   its link toward the switch:   it starts when A's earlier frames are through, s = max(t, A.up),
//                                 sends for L/A.rate (A.up = s + L/A.rate), and arrives DELAY later:
//                                 its head at h = s + A.delay, its tail at s + L/A.rate + A.delay;
//   B's link from the switch:     it starts at max(h, B.down) (cut-through, as a switch would, so
//                                 that a long frame is not serialized twice) and leaves when its
//                                 last byte has gone and has arrived, at
//                                 d = max(max(h, B.down) + L/B.rate, tail); B.down = d.
// Frames leave each port in the order they reached it (FIFO, no reordering). Each direction of a
// link queues at most 50 ms of its rate (as tc's tbf ... latency 50ms); a frame that would wait
// longer is dropped and counted. Broadcast, multicast and frames to an unknown address go to every
// other port.
//
// The process sleeps in ppoll() until a frame arrives or the next one is due (timer slack 1 ns,
// CLOCK_MONOTONIC), never spins. It asks for SCHED_FIFO at priority 1, the least real-time one, as
// netem's timers run in softirq before any process: during a 1 Gbit/s transfer while a build ran
// beside it on this 2-core machine, frames left ~150 us late on average as an ordinary process,
// 15-30 us with it (it used ~15% of a core then, most of it the receiving kernel's work inside its
// writes). SIGUSR1 prints each port's counters (frames, bytes, drops, lateness), SIGTERM (or
// SIGINT, SIGHUP) prints them and ends it with status 0; the TAPs go with it. A failed open,
// ioctl, read or write is reported with the port's name and errno's text and ends it with status 1
// (a frame written to a port whose interface is down is dropped and counted, as on a link that is
// down).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "tc_units.hpp"

namespace {

using Nanos = int64_t;  // CLOCK_MONOTONIC, in nanoseconds
constexpr Nanos kQueueLimit = 50'000'000;  // each direction of a rate-limited link queues up to 50 ms
constexpr size_t kMaxFrame = 65536 + 64;    // the largest MTU (65535) and an Ethernet header, and more
constexpr int kReadBurst = 64;              // frames read from one port before the others get a turn
constexpr Nanos kMaxEarly = 100'000;        // the most a wake-up is asked for before a frame is due

Nanos now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "linkemu: %s\nusage: linkemu [--pidfile FILE] NAME:DELAY:RATE...\n", why.c_str());
  std::exit(2);
}

// "200us", "1ms", "0.5s", a bare number: microseconds (as tc).
Nanos parse_delay(const std::string& s) {
  const double ns = tc_units::time_ns(s);
  if (ns < 0) usage("bad delay '" + s + "' (e.g. 200us, 1ms)");
  return static_cast<Nanos>(std::llround(ns));
}

// "1gbit", "100mbit", "10gbps" (bytes), a bare number: bits per second (as tc); 0: no limit.
double parse_rate(const std::string& s) {
  const double bps = tc_units::rate_bps(s);
  if (bps < 0) usage("bad rate '" + s + "' (e.g. 1gbit, 100mbit)");
  return bps;
}

struct Frame {
  Nanos due;   // in a port's `in`: when its head reaches the switch; in `out`: when it leaves
  Nanos tail;  // in `in`: when its tail reaches the switch
  std::vector<unsigned char> bytes;
};

struct Port {
  std::string name, delay_text, rate_text;
  int fd = -1;
  Nanos delay = 0;
  double ns_per_byte = 0;  // 0: no rate limit
  Nanos up = 0, down = 0;  // when the link toward the switch, and from it, are free again
  std::deque<Frame> in, out;
  uint64_t sent = 0, sent_bytes = 0, sent_dropped = 0;  // frames its interface sent (we read)
  uint64_t got = 0, got_bytes = 0, got_dropped = 0;     // frames for it (we write); dropped: queue full
  uint64_t got_down = 0, got_refused = 0;               // not written: interface down (EIO), EAGAIN/ENOBUFS
  Nanos late_sum = 0, late_max = 0;                     // how much later than due frames left
  uint64_t late_count = 0;                              // frames that late_sum is over

  Nanos transmit(size_t bytes) const { return static_cast<Nanos>(std::llround(bytes * ns_per_byte)); }
};

std::vector<Port> ports;
std::map<uint64_t, size_t> where;  // learned: MAC address -> port index
volatile sig_atomic_t stop_signal = 0, report_wanted = 0;
std::string pidfile;

void on_signal(int sig) {
  if (sig == SIGUSR1)
    report_wanted = 1;
  else
    stop_signal = sig;
}

void report(const char* when) {
  std::fprintf(stderr, "linkemu: counters (%s)\n", when);
  for (const Port& p : ports)
    std::fprintf(stderr,
                 "linkemu:   %s sent %llu frames, %llu bytes, %llu dropped; received %llu frames, %llu bytes, "
                 "%llu dropped (queue full), %llu dropped (interface down), %llu refused by the kernel; late by %.1f us "
                 "on average, %.1f us at most\n",
                 p.name.c_str(), (unsigned long long)p.sent, (unsigned long long)p.sent_bytes,
                 (unsigned long long)p.sent_dropped, (unsigned long long)p.got, (unsigned long long)p.got_bytes,
                 (unsigned long long)p.got_dropped, (unsigned long long)p.got_down, (unsigned long long)p.got_refused,
                 p.late_count ? p.late_sum / 1e3 / double(p.late_count) : 0.0, p.late_max / 1e3);
}

[[noreturn]] void fail(const std::string& port, const char* what, int err) {
  std::fprintf(stderr, "linkemu: %s: %s failed: %s\n", port.c_str(), what, std::strerror(err));
  report("at exit, after an error");
  if (!pidfile.empty()) unlink(pidfile.c_str());
  std::exit(1);
}

uint64_t mac(const unsigned char* p) {
  uint64_t m = 0;
  for (int i = 0; i < 6; ++i) m = m << 8 | p[i];
  return m;
}

// A frame that port `a`'s interface sent at time t: onto a's link toward the switch.
void arrive(Port& a, const unsigned char* data, size_t n, Nanos t) {
  ++a.sent;
  a.sent_bytes += n;
  const Nanos start = std::max(t, a.up);
  if (a.ns_per_byte > 0 && start - t > kQueueLimit) {
    ++a.sent_dropped;
    return;
  }
  a.up = start + a.transmit(n);
  a.in.push_back({start + a.delay, a.up + a.delay, std::vector<unsigned char>(data, data + n)});
}

// Frame f has reached the switch from port `a`: onto the link from the switch to port b.
void enqueue(Port& b, const Frame& f, std::vector<unsigned char> bytes) {
  const Nanos start = std::max(f.due, b.down);
  if (b.ns_per_byte > 0 && start - f.due > kQueueLimit) {
    ++b.got_dropped;
    return;
  }
  b.down = std::max(start + b.transmit(bytes.size()), f.tail);
  b.out.push_back({b.down, 0, std::move(bytes)});
}

// The switch: learns where the source address is, passes the frame on by its destination.
void forward(size_t from, Frame f) {
  const unsigned char* eth = f.bytes.data();
  if (f.bytes.size() < 14) return;  // not an Ethernet frame (a TAP gives none such)
  if (!(eth[6] & 1)) where[mac(eth + 6)] = from;  // a group address is never a source
  const auto known = (eth[0] & 1) ? where.end() : where.find(mac(eth));
  if (known != where.end()) {
    if (known->second != from) enqueue(ports[known->second], f, std::move(f.bytes));
    return;
  }
  for (size_t i = 0; i < ports.size(); ++i)
    if (i != from) enqueue(ports[i], f, f.bytes);
}

// Everything due by time t: frames reaching the switch (in the order they reach it, across ports),
// then frames leaving it.
void run_due(Nanos t) {
  for (;;) {
    size_t first = ports.size();
    for (size_t i = 0; i < ports.size(); ++i)
      if (!ports[i].in.empty() && ports[i].in.front().due <= t &&
          (first == ports.size() || ports[i].in.front().due < ports[first].in.front().due))
        first = i;
    if (first == ports.size()) break;
    Frame f = std::move(ports[first].in.front());
    ports[first].in.pop_front();
    forward(first, std::move(f));
  }
  for (Port& p : ports) {
    while (!p.out.empty() && p.out.front().due <= t) {
      const auto& bytes = p.out.front().bytes;
      const Nanos late = now() - p.out.front().due;
      p.late_sum += late;
      p.late_max = std::max(p.late_max, late);
      ++p.late_count;
      const ssize_t n = write(p.fd, bytes.data(), bytes.size());
      if (n == static_cast<ssize_t>(bytes.size())) {
        ++p.got;
        p.got_bytes += bytes.size();
      } else if (n < 0 && errno == EIO) {
        ++p.got_down;  // not yet up, or being moved into its node
      } else if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
        ++p.got_refused;  // out of buffers: dropped, as a NIC would
      } else {
        fail(p.name, "write", n < 0 ? errno : EMSGSIZE);
      }
      p.out.pop_front();
    }
  }
}

Nanos next_due() {
  Nanos next = INT64_MAX;
  for (const Port& p : ports) {
    if (!p.in.empty()) next = std::min(next, p.in.front().due);
    if (!p.out.empty()) next = std::min(next, p.out.front().due);
  }
  return next;
}

void attach(Port& p) {
  if (p.name.empty() || p.name.size() >= IFNAMSIZ) usage("bad interface name '" + p.name + "'");
  p.fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (p.fd < 0) fail(p.name, "open(/dev/net/tun)", errno);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, p.name.c_str(), p.name.size());
  if (ioctl(p.fd, TUNSETIFF, &ifr) < 0) fail(p.name, "ioctl(TUNSETIFF)", errno);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--pidfile" && i + 1 < argc) {
      pidfile = argv[++i];
      continue;
    }
    const size_t c1 = a.find(':'), c2 = c1 == std::string::npos ? c1 : a.find(':', c1 + 1);
    if (c2 == std::string::npos || a.find(':', c2 + 1) != std::string::npos) usage("bad port '" + a + "'");
    Port p;
    p.name = a.substr(0, c1);
    p.delay_text = a.substr(c1 + 1, c2 - c1 - 1);
    p.rate_text = a.substr(c2 + 1);
    p.delay = parse_delay(p.delay_text);
    const double bps = parse_rate(p.rate_text);
    p.ns_per_byte = bps > 0 ? 8e9 / bps : 0;
    ports.push_back(std::move(p));
  }
  if (ports.size() < 2) usage("needs two ports or more");

  // The signals are blocked except while ppoll waits, so that none is lost between a check of the
  // flags and the wait.
  sigset_t handled, waiting;
  sigemptyset(&handled);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    sigaddset(&handled, s);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(s, &sa, nullptr);
  }
  sigprocmask(SIG_BLOCK, &handled, &waiting);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigdelset(&waiting, s);
  // Wake-ups on time: the default slack of 50 us would be a quarter of a 200 us delay.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  sched_param priority{};
  priority.sched_priority = 1;
  const bool realtime = sched_setscheduler(0, SCHED_FIFO, &priority) == 0;
  const int realtime_errno = errno;

  for (Port& p : ports) attach(p);
  std::fprintf(stderr, "linkemu: pid %d, queue limit %lld ms of each link's rate, %s\n", getpid(),
               (long long)(kQueueLimit / 1'000'000),
               realtime ? "SCHED_FIFO 1" : ("not real-time (" + std::string(std::strerror(realtime_errno)) + ")").c_str());
  for (const Port& p : ports)
    std::fprintf(stderr, "linkemu:   port %s: delay %s (%lld ns) on what it sends, rate %s (%.0f bit/s%s) each way\n",
                 p.name.c_str(), p.delay_text.c_str(), (long long)p.delay, p.rate_text.c_str(),
                 p.ns_per_byte > 0 ? 8e9 / p.ns_per_byte : 0.0, p.ns_per_byte > 0 ? "" : ", no limit");
  if (!pidfile.empty()) {
    const std::string tmp = pidfile + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f || std::fprintf(f, "%d\n", getpid()) < 0 || std::fclose(f) != 0 || rename(tmp.c_str(), pidfile.c_str()) != 0)
      fail(pidfile, "writing the pid file", errno);
  }

  std::vector<pollfd> fds;
  for (const Port& p : ports) fds.push_back({p.fd, POLLIN, 0});
  std::vector<unsigned char> buf(kMaxFrame);
  Nanos early = 0, lateness_min = INT64_MAX;
  int lateness_count = 0;
  while (!stop_signal) {
    if (report_wanted) {
      report_wanted = 0;
      report("SIGUSR1");
    }
    run_due(now());
    // A timed wake-up comes late, by 15-40 us here (a VM's timer); asking for `early` less, the
    // least lateness seen in the last 128, brings frames out nearer their time and never before it
    // (a wake-up before the frame is due sleeps again for the rest).
    const Nanos next = next_due(), t_wait = now();
    Nanos target = INT64_MAX;
    timespec wait{}, *timeout = nullptr;
    if (next != INT64_MAX) {
      target = next - early > t_wait ? next - early : next;
      const Nanos left = std::max<Nanos>(0, target - t_wait);
      wait = {static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
      timeout = &wait;
    }
    const int ready = ppoll(fds.data(), fds.size(), timeout, &waiting);
    if (ready < 0) {
      if (errno == EINTR) continue;
      fail("all ports", "ppoll", errno);
    }
    if (ready == 0) {
      if (target > t_wait) {
        lateness_min = std::min(lateness_min, now() - target);
        if (++lateness_count == 128) {
          early = std::clamp<Nanos>(lateness_min, 0, kMaxEarly);
          lateness_min = INT64_MAX;
          lateness_count = 0;
        }
      }
      continue;
    }
    const Nanos t = now();
    for (size_t i = 0; i < ports.size(); ++i) {
      if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL))
        fail(ports[i].name, "poll (the device is gone: was its namespace removed?)", ENODEV);
      if (!(fds[i].revents & POLLIN)) continue;
      for (int k = 0; k < kReadBurst; ++k) {
        const ssize_t n = read(ports[i].fd, buf.data(), buf.size());
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) fail(ports[i].name, "read", errno);
        arrive(ports[i], buf.data(), static_cast<size_t>(n), t);
      }
    }
  }
  std::fprintf(stderr, "linkemu: signal %d: ending\n", static_cast<int>(stop_signal));
  report("at exit");
  if (!pidfile.empty()) unlink(pidfile.c_str());
  for (Port& p : ports) close(p.fd);
  return 0;
}
