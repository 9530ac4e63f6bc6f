#include "userspace/proxy/pg/cancel_registry.h"

#include <errno.h>
#include <sys/random.h>

#include <cstddef>
#include <cstdlib>

namespace interlock::proxy::pg {

std::pair<uint32_t, uint32_t> CancelRegistry::Register(CancelTarget target) {
  uint32_t pid = target.upstream_pid;
  while (pid == 0 || pid > 0x7fffffffu) {
    // No real pid to show: a positive int32 like one, never 0, unused.
    pid = random32_() & 0x7fffffffu;
    if (entries_.contains(pid)) pid = 0;
  }
  uint32_t key;
  do {
    key = random32_();
  } while (Contains(pid, key));
  entries_[pid].push_back(Entry{key, std::move(target)});
  ++size_;
  return {pid, key};
}

bool CancelRegistry::Contains(uint32_t pid, uint32_t key) const {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return false;
  for (const Entry& e : it->second) {
    if (e.key == key) return true;
  }
  return false;
}

void CancelRegistry::Unregister(uint32_t pid, uint32_t key) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  auto& list = it->second;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].key != key) continue;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    --size_;
    break;
  }
  if (list.empty()) entries_.erase(it);
}

const CancelTarget* CancelRegistry::Find(uint32_t pid, uint32_t key) const {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return nullptr;
  // Constant-time comparison of every candidate: the key is the only secret in a cancel
  // request (the pid is public, in pg_stat_activity).
  const CancelTarget* found = nullptr;
  for (const Entry& e : it->second) {
    volatile uint32_t diff = e.key ^ key;
    if (diff == 0) found = &e.target;
  }
  return found;
}

uint32_t SecureRandom32() {
  uint32_t v;
  for (;;) {
    ssize_t n = ::getrandom(&v, sizeof v, 0);
    if (n == sizeof v) return v;
    if (n < 0 && errno == EINTR) continue;
    std::abort();  // the kernel CSPRNG failed: a broken invariant
  }
}

}  // namespace interlock::proxy::pg
