#include "userspace/proxy/pg/cancel_registry.h"

#include <errno.h>
#include <sys/random.h>

#include <cstdlib>

namespace interlock::proxy::pg {

std::pair<uint32_t, uint32_t> CancelRegistry::Register(CancelTarget target) {
  uint32_t pid;
  do {
    // Positive int32 like a real backend pid; never 0.
    pid = random32_() & 0x7fffffffu;
  } while (pid == 0 || entries_.contains(pid));
  uint32_t key = random32_();
  entries_[pid] = Entry{key, std::move(target)};
  return {pid, key};
}

void CancelRegistry::Unregister(uint32_t pid) { entries_.erase(pid); }

const CancelTarget* CancelRegistry::Find(uint32_t pid, uint32_t key) const {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return nullptr;
  // Constant-time comparison: the key is the only secret in a cancel request.
  volatile uint32_t diff = it->second.key ^ key;
  return diff == 0 ? &it->second.target : nullptr;
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
