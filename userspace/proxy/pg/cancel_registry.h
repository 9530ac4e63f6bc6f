// CancelRegistry: PostgreSQL query cancellation across the proxy (PostgreSQL docs 55.2.7
// "Canceling Requests in Progress"). The agent's BackendKeyData carries the upstream
// backend's real process id — so PQbackendPID() matches pg_stat_activity.pid,
// pg_blocking_pids() and pg_cancel_backend() — and a secret key of interlockd's own, which
// stands for the upstream key the agent never sees. An agent's CancelRequest, which arrives
// on a new connection through the same redirect, is looked up by (pid, key) and forwarded
// with the upstream key. Only the workload that owns the session may cancel it.
//
//   CancelRegistry reg(random);
//   auto [pid, key] = reg.Register({.session_id = id, .upstream_pid = 4242, ...});  // pid 4242
//   ...
//   if (const CancelTarget* t = reg.Find(pid, key)) Forward(*t);
//   reg.Unregister(pid, key);
//
// Two resources (two servers) may have backends with the same pid: entries are told apart
// by their keys, which are drawn until the pair is unique.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "userspace/net/socket.h"

namespace interlock::proxy::pg {

// What a cancel did to a session's held statement.
enum class Withdrawal {
  kNothingHeld,  // no statement was held: the cancel is for the server
  kIdle,         // withdrawn, and nothing else of the session's runs on the server
  kBusy,         // withdrawn, and statements sent before it may still be running there
};

struct CancelTarget {
  std::string session_id;
  uint64_t cgroup_id = 0;  // the owning workload's cgroup
  std::string workload;
  net::SockAddr upstream;
  uint32_t upstream_pid = 0;
  uint32_t upstream_key = 0;
  // Withdraws the session's held statement, if it holds one (the agent cancelled it before
  // a decision). Unset: the session holds nothing it could withdraw.
  std::function<Withdrawal()> withdraw_hold;
};

class CancelRegistry {
 public:
  // `random32` returns uniformly random 32-bit values (injected for tests).
  explicit CancelRegistry(std::function<uint32_t()> random32) : random32_(std::move(random32)) {}

  // Issues the (pid, key) pair for the agent: pid is target.upstream_pid (a random positive
  // one, unique among live entries, when the server sent none), key random and the pair
  // unique among live entries.
  std::pair<uint32_t, uint32_t> Register(CancelTarget target);
  void Unregister(uint32_t pid, uint32_t key);
  // The target for (pid, key), or nullptr. The key is compared in constant time.
  const CancelTarget* Find(uint32_t pid, uint32_t key) const;
  size_t size() const { return size_; }

 private:
  struct Entry {
    uint32_t key;
    CancelTarget target;
  };
  bool Contains(uint32_t pid, uint32_t key) const;

  std::function<uint32_t()> random32_;
  absl::flat_hash_map<uint32_t, std::vector<Entry>> entries_;  // by pid
  size_t size_ = 0;
};

// 32 random bits from getrandom(2).
uint32_t SecureRandom32();

}  // namespace interlock::proxy::pg
