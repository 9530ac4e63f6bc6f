#include "userspace/net/leaf_cache.h"

#include <cstdlib>
#include <utility>

#include "userspace/common/status_macros.h"
#include "userspace/net/leaf_name.h"

namespace interlock::net {

LeafCache::LeafCache(const LocalCa& ca, size_t capacity) : ca_(ca), capacity_(capacity) {
  if (capacity_ == 0) std::abort();  // a programming error, not input
}

absl::StatusOr<std::shared_ptr<const MintedLeaf>> LeafCache::Get(absl::string_view name) {
  INTERLOCK_ASSIGN_OR_RETURN(LeafName key, NormalizeLeafName(name));
  auto found = by_name_.find(key.text);
  if (found != by_name_.end()) {
    Lru::iterator it = found->second;
    if (ca_.clock().Now() < (*it)->not_after - kRenewBefore) {
      lru_.splice(lru_.begin(), lru_, it);  // iterators stay valid
      return *it;
    }
    lru_.erase(it);
    by_name_.erase(found);
  }
  INTERLOCK_ASSIGN_OR_RETURN(MintedLeaf minted, ca_.MintLeaf(key.text));
  ++minted_;
  lru_.push_front(std::make_shared<const MintedLeaf>(std::move(minted)));
  by_name_[key.text] = lru_.begin();
  if (lru_.size() > capacity_) {
    by_name_.erase(lru_.back()->name);
    lru_.pop_back();
  }
  return lru_.front();
}

absl::StatusOr<ServerCertificateSource::Certificate> LeafCache::CertificateFor(
    absl::string_view name) {
  INTERLOCK_ASSIGN_OR_RETURN(std::shared_ptr<const MintedLeaf> leaf, Get(name));
  // Borrowed: the cache holds the leaf until the next call at the earliest.
  return Certificate{.cert = leaf->cert.get(), .key = leaf->key.get()};
}

}  // namespace interlock::net
