// CancelRegistry: PostgreSQL query cancellation across the proxy (PostgreSQL docs 55.2.7
// "Canceling Requests in Progress"). interlockd gives each agent session its own
// BackendKeyData (pid, secret key) and remembers which upstream backend it stands for;
// an agent's CancelRequest — which arrives on a new connection, through the same
// redirect — is mapped to the upstream key and forwarded. Only the workload that owns
// the session may cancel it.
//
//   CancelRegistry reg(random);
//   auto [pid, key] = reg.Register({.session_id = id, .cgroup_id = cg, ...});
//   ...
//   if (const CancelTarget* t = reg.Find(pid, key)) Forward(*t);
//   reg.Unregister(pid);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "userspace/net/socket.h"

namespace interlock::proxy::pg {

struct CancelTarget {
  std::string session_id;
  uint64_t cgroup_id = 0;  // the owning workload's cgroup
  std::string workload;
  net::SockAddr upstream;
  uint32_t upstream_pid = 0;
  uint32_t upstream_key = 0;
};

class CancelRegistry {
 public:
  // `random32` returns uniformly random 32-bit values (injected for tests).
  explicit CancelRegistry(std::function<uint32_t()> random32) : random32_(std::move(random32)) {}

  // Issues a fresh (pid, key) pair for the agent: pid positive and unique among live
  // entries, key random.
  std::pair<uint32_t, uint32_t> Register(CancelTarget target);
  void Unregister(uint32_t pid);
  // The target for (pid, key), or nullptr. The key is compared in constant time.
  const CancelTarget* Find(uint32_t pid, uint32_t key) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint32_t key;
    CancelTarget target;
  };
  std::function<uint32_t()> random32_;
  absl::flat_hash_map<uint32_t, Entry> entries_;
};

// 32 random bits from getrandom(2).
uint32_t SecureRandom32();

}  // namespace interlock::proxy::pg
