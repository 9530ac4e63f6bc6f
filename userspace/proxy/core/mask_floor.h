// The masks an answer must pass, as every protocol that masks decides them (HTTP response
// bodies, SSH output): the MASK rule's own profile first (its styles win), then the
// policy's floor for this subject on this resource (policy::PolicyEvaluator::MaskProfilesFor:
// every profile a MASK rule applies to them there, so a value one request masks cannot be
// had through another), merged into one masker by MaskProfiles::Floor.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "userspace/mask/masker.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/core/mask_profiles.h"

namespace interlock::proxy {

// `policy` and `masks` as in ProtocolEnv (either may be null). *required: some profile
// applies; *names: their names joined by "+". The masker, or null when none applies — or,
// with *required, when one cannot be had (a missing or broken profile): the caller then
// refuses (fail closed).
std::shared_ptr<const mask::Masker> MaskerForDecision(const std::shared_ptr<const policy::PolicyEvaluator>* policy,
                                                      MaskProfiles* masks, const policy::SubjectFacts& who,
                                                      absl::string_view resource, const policy::Decision& d,
                                                      bool* required, std::string* names);

}  // namespace interlock::proxy
