// NetnsListeners: interlockd's engine listeners in network namespaces other than its own
// (containers, `ip netns`).
//
// The connect hook rewrites an enrolled connect to the engine address in the connecting
// socket's own namespace and redirects only to a listener interlockd marked there
// (engine_listeners); so interlockd listens, on the same addresses and port, in each
// namespace it serves. Which ones: the configured namespace files
// (listener.network_namespaces) and, with discovery, the namespaces of the processes in
// enrolled cgroups. Sync() brings the set of open listeners in line with that, opening
// what is missing and closing the listeners of namespaces no longer wanted; accepted
// connections are handed to `on_accept` on the same event loop, and upstream connections
// still go out from interlockd's own namespace (the loop thread never leaves it).
//
//   NetnsListeners netns(loop, datapath, handover, {.addrs = addrs, .configured = paths},
//                        [&](int listen_fd) { OnAccept(listen_fd); }, report);
//   netns.Sync(enrolled_pids);   // every tick, and when a connect found no listener
//   netns.CloseAll();            // drain
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "userspace/bpf/datapath.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/handover.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/socket.h"

namespace interlock::daemon {

struct NetnsListenersOptions {
  std::vector<net::SockAddr> addrs;     // the engine's addresses (v4, maybe v6), with port
  std::vector<std::string> configured;  // namespace files, absolute
  bool discover = true;                 // also the namespaces of enrolled processes
  int backlog = 4096;
  // At most this many namespaces are served (an agent allowed user namespaces can make
  // network namespaces at will); beyond it they fail closed, reported once.
  size_t max_namespaces = 1024;
};

class NetnsListeners {
 public:
  // `report(outcome, detail)`: "netns_listening", "netns_closed", "netns_listen_failed"
  // (the latter also for one address of a namespace served on the others; once per
  // namespace and distinct error, not at every retry).
  using Report = std::function<void(const std::string& outcome, const std::string& detail)>;

  // Reads interlockd's own namespace; INTERNAL when /proc/thread-self/ns/net is unreadable.
  // Listeners come from `handover` (an upgrade's inherited ones first; each is passed on
  // to a later upgrade while open); it must outlive this.
  static absl::StatusOr<std::unique_ptr<NetnsListeners>> Create(
      net::EventLoop* loop, bpf::Datapath* datapath, Handover* handover, NetnsListenersOptions options,
      std::function<void(int listen_fd)> on_accept, Report report);
  ~NetnsListeners();
  NetnsListeners(const NetnsListeners&) = delete;
  NetnsListeners& operator=(const NetnsListeners&) = delete;

  // Wanted now: the configured namespaces that exist, and (discovery) those of
  // `enrolled_pids` (pids in the host's pid namespace). Opens listeners in wanted
  // namespaces that have none (a failure is retried at the next Sync), closes those of
  // namespaces no longer wanted. interlockd's own namespace is never touched here.
  void Sync(const std::vector<pid_t>& enrolled_pids);
  // Closes every listener (drain); Sync() afterwards opens them again.
  void CloseAll();

  // Namespaces listened in now, as "net:[inode]" with where they were found.
  std::vector<std::string> Describe() const;

 private:
  // A namespace file's identity: nsfs device and inode.
  struct NsKey {
    uint64_t dev = 0;
    uint64_t ino = 0;
    bool operator==(const NsKey& o) const { return dev == o.dev && ino == o.ino; }
    template <typename H>
    friend H AbslHashValue(H h, const NsKey& k) {
      return H::combine(std::move(h), k.dev, k.ino);
    }
  };
  // Routes one listener's readiness to on_accept.
  class Listener;
  struct Open {
    std::string source;  // "/run/netns/x", "pid 1234"
    // One per options.addrs entry; null where listening failed (retried at each Sync).
    std::vector<std::unique_ptr<Listener>> listeners;
    size_t missing() const {
      size_t n = 0;
      for (const auto& l : listeners) n += l == nullptr;
      return n;
    }
  };
  struct Wanted {
    std::string path;    // namespace file to open
    std::string source;
  };

  NetnsListeners(net::EventLoop* loop, bpf::Datapath* datapath, Handover* handover, NetnsListenersOptions options,
                 std::function<void(int)> on_accept, Report report, NsKey own);
  // Opens the engine listeners `out` lacks in the namespace `key` (through `want.path`).
  // `errors` names the addresses that failed; UNAVAILABLE when none is listened on, any
  // other error when the namespace could not be entered or a listener not registered.
  absl::Status OpenIn(const NsKey& key, const Wanted& want, Open& out, std::string& errors);
  void Close(Open& open);
  static std::string Name(const NsKey& key);

  net::EventLoop* loop_;
  bpf::Datapath* datapath_;
  Handover* handover_;
  NetnsListenersOptions options_;
  std::function<void(int)> on_accept_;
  Report report_;
  NsKey own_;
  absl::flat_hash_map<NsKey, Open> open_;
  absl::flat_hash_map<NsKey, std::string> failed_;  // last error reported, per namespace
};

}  // namespace interlock::daemon
