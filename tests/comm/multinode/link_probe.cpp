// Both ends of a TCP measurement across an emulated link, for test_link_shaping.cpp (run in two
// nodes of scripts/multinode.sh with nsenter):
//   link_probe serve                      listens on a free port, prints "port N", serves one client
//   link_probe ping HOST PORT ROUNDS      ROUNDS round trips of 64 bytes (after 20 not counted);
//                                         prints "rtt_us median M min A max B"
//   link_probe bulk HOST PORT BYTES       sends BYTES one way, until the server says it has them all;
//                                         prints "bulk bytes N seconds S bits_per_second R"
// The client's first byte tells the server which ('p' echo, 'b' count and answer). Any failure is
// printed with errno's text and ends the program with status 1; no call waits more than 20 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMessage = 64;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "link_probe: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void set_options(int fd) {
  const int one = 1;
  const timeval limit{20, 0};
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0)
    fail("setsockopt");
}

void send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail("send");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

// Reads exactly n bytes; false at end of stream before the first byte.
bool recv_all(int fd, char* p, size_t n) {
  for (size_t got = 0; got < n;) {
    const ssize_t k = recv(fd, p + got, n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) fail("recv");
    if (k == 0) {
      if (got == 0) return false;
      errno = EPIPE;
      fail("recv (end of stream inside a message)");
    }
    got += static_cast<size_t>(k);
  }
  return true;
}

int serve() {
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) fail("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(ls, 1) < 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) < 0)
    fail("bind/listen");
  std::printf("port %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  const timeval limit{20, 0};
  setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const int fd = accept(ls, nullptr, nullptr);
  if (fd < 0) fail("accept");
  set_options(fd);
  char mode;
  if (!recv_all(fd, &mode, 1)) return 0;
  if (mode == 'p') {
    char msg[kMessage];
    while (recv_all(fd, msg, sizeof msg)) send_all(fd, msg, sizeof msg);
  } else {
    unsigned long long want = 0, got = 0;
    if (!recv_all(fd, reinterpret_cast<char*>(&want), sizeof want)) return 0;
    std::vector<char> buf(1 << 20);
    while (got < want) {
      const ssize_t k = recv(fd, buf.data(), buf.size(), 0);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) fail("recv (bulk)");
      got += static_cast<unsigned long long>(k);
    }
    send_all(fd, "k", 1);
  }
  close(fd);
  return 0;
}

int connect_to(const char* host, const char* port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    errno = EINVAL;
    fail("address");
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  set_options(fd);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) fail("connect");
  return fd;
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

int ping(const char* host, const char* port, int rounds) {
  const int fd = connect_to(host, port);
  send_all(fd, "p", 1);
  char msg[kMessage] = {};
  std::vector<double> rtt;
  for (int i = 0; i < 20 + rounds; ++i) {
    const auto t0 = Clock::now();
    send_all(fd, msg, sizeof msg);
    if (!recv_all(fd, msg, sizeof msg)) fail("recv (the server closed)");
    if (i >= 20) rtt.push_back(micros(Clock::now() - t0));
  }
  close(fd);
  std::sort(rtt.begin(), rtt.end());
  std::printf("rtt_us median %.1f min %.1f max %.1f\n", rtt[rtt.size() / 2], rtt.front(), rtt.back());
  return 0;
}

int bulk(const char* host, const char* port, unsigned long long bytes) {
  const int fd = connect_to(host, port);
  send_all(fd, "b", 1);
  send_all(fd, reinterpret_cast<const char*>(&bytes), sizeof bytes);
  const std::vector<char> chunk(1 << 20, 'x');
  const auto t0 = Clock::now();
  for (unsigned long long left = bytes; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<unsigned long long>(left, chunk.size()));
    send_all(fd, chunk.data(), n);
    left -= n;
  }
  char ack;
  if (!recv_all(fd, &ack, 1)) fail("recv (no answer to the bulk)");
  const double s = micros(Clock::now() - t0) / 1e6;
  close(fd);
  std::printf("bulk bytes %llu seconds %.4f bits_per_second %.0f\n", bytes, s, bytes * 8 / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 2) return serve();
  if (mode == "ping" && argc == 5) return ping(argv[2], argv[3], std::max(1, std::atoi(argv[4])));
  if (mode == "bulk" && argc == 5) return bulk(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10));
  std::fprintf(stderr, "usage: link_probe serve | ping HOST PORT ROUNDS | bulk HOST PORT BYTES\n");
  return 2;
}
