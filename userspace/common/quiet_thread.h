// A thread that never takes a process signal. interlockd reads SIGTERM, SIGHUP, ... from a
// signalfd and blocks them in the loop thread only, possibly after a helper thread exists;
// a thread that left them unblocked would have them delivered to it (and SIGTERM's default
// action ends the process without its clean stop). A thread inherits its creator's signal
// mask, so every signal is blocked around the creation.
//
//   std::thread t = StartQuietThread([fd = std::move(old)] { ::fdatasync(fd.get()); });
//   std::jthread j = StartQuietThread<std::jthread>([](std::stop_token stop) { ... });
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace interlock {

template <typename Thread = std::thread, typename F>
Thread StartQuietThread(F&& f) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  Thread t(std::forward<F>(f));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

}  // namespace interlock
