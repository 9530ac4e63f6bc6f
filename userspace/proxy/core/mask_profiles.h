// MaskProfiles: the compiled mask profiles of the policy in force, as every protocol that
// masks answers needs them (PostgreSQL results, HTTP response bodies). Implemented by the
// daemon (userspace/daemon/mask_service.h), which also gives PostgreSQL its catalog
// (proxy::pg::MaskSupport extends this).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "userspace/mask/masker.h"

namespace interlock::proxy {

class MaskProfiles {
 public:
  virtual ~MaskProfiles() = default;
  // The compiled profile `name` of the current policy; null when there is none (the
  // session then refuses what it was told to mask: fail closed). Shared: an answer being
  // masked keeps its masker alive across a policy reload.
  virtual std::shared_ptr<const mask::Masker> Profile(const std::string& name) = 0;
  // The session floor: the profiles `names` (policy::PolicyEvaluator::MaskProfilesFor)
  // merged into one (mask::MergeProfiles), compiled once per policy; the profile itself
  // for a single name. Null when any of them is missing or does not compile (fail closed).
  virtual std::shared_ptr<const mask::Masker> Floor(const std::vector<std::string>& names) = 0;
};

}  // namespace interlock::proxy
