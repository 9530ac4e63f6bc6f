// interlock-echo: a throwaway TCP echo service for the demo and benchmarks.
//   interlock-echo IP PORT     serves until SIGTERM/SIGINT
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "tools/echo/echo_server.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: interlock-echo IP PORT\n");
    return 2;
  }
  // One descriptor per connection: the idle benchmark holds thousands.
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  interlock::tools::EchoServer server;
  absl::Status st = server.Start(argv[1], static_cast<uint16_t>(std::atoi(argv[2])));
  if (!st.ok()) {
    std::fprintf(stderr, "interlock-echo: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("interlock-echo: serving %s:%u\n", argv[1], server.port());
  std::fflush(stdout);
  int sig;
  sigwait(&mask, &sig);
  server.Stop();
  return 0;
}
