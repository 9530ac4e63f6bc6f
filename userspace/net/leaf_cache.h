// LeafCache: the interception CA's minted leaves, by normalised name, so that an agent
// opening its hundredth connection to api.example.com costs a map lookup, not a signature.
// It is the ServerCertificateSource behind the agent-facing TLS server context
// (TlsServerContext::CreateWithCertificateSource).
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto ca, LocalCa::Load(state_dir, clock));
//   LeafCache leaves(*ca);
//   INTERLOCK_ASSIGN_OR_RETURN(auto tls_ctx,
//       TlsServerContext::CreateWithCertificateSource(leaves, {"http/1.1"}));
//
// Bounded: at most `capacity` leaves; inserting one more evicts the least recently used. A
// cached leaf is reminted once the CA's clock is within kRenewBefore of its notAfter, so a
// connection never gets a leaf that expires during a day-long session (when the CA itself
// has less than that left, every lookup remints: renew the CA).
//
// Thread-compatible, not thread-safe: interlockd has one event loop thread per cache.
// The CA must outlive the cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/tls.h"

namespace interlock::net {

class LeafCache final : public ServerCertificateSource {
 public:
  static constexpr size_t kDefaultCapacity = 1024;
  static constexpr absl::Duration kRenewBefore = absl::Hours(24);

  // `capacity` must be at least 1.
  explicit LeafCache(const LocalCa& ca, size_t capacity = kDefaultCapacity);

  // The leaf for `name` (a DNS name or IP literal; LocalCa::MintLeaf's errors), minted when
  // it is not cached or is due for renewal. The leaf stays valid for as long as the caller
  // holds it, even once evicted.
  absl::StatusOr<std::shared_ptr<const MintedLeaf>> Get(absl::string_view name);

  // ServerCertificateSource: Get(name)'s certificate and key, borrowed from the cache.
  absl::StatusOr<Certificate> CertificateFor(absl::string_view name) override;

  size_t size() const { return lru_.size(); }
  size_t capacity() const { return capacity_; }
  // How many leaves this cache has minted (a remint counts).
  uint64_t minted() const { return minted_; }

 private:
  using Lru = std::list<std::shared_ptr<const MintedLeaf>>;  // most recently used first

  const LocalCa& ca_;
  size_t capacity_;
  Lru lru_;
  absl::flat_hash_map<std::string, Lru::iterator> by_name_;
  uint64_t minted_ = 0;
};

}  // namespace interlock::net
