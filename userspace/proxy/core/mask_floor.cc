#include "userspace/proxy/core/mask_floor.h"

#include <utility>
#include <vector>

#include "absl/strings/str_join.h"

namespace interlock::proxy {

std::shared_ptr<const mask::Masker> MaskerForDecision(const std::shared_ptr<const policy::PolicyEvaluator>* policy,
                                                      MaskProfiles* masks, const policy::SubjectFacts& who,
                                                      absl::string_view resource, const policy::Decision& d,
                                                      bool* required, std::string* names) {
  std::vector<std::string> list;
  if (d.action == v1::ACTION_MASK) list.push_back(d.mask_profile);
  if (policy != nullptr && *policy != nullptr) {
    for (std::string& n : (*policy)->MaskProfilesFor(who, resource)) {
      if (list.empty() || n != list.front()) list.push_back(std::move(n));
    }
  }
  *required = !list.empty();
  *names = absl::StrJoin(list, "+");
  if (list.empty() || masks == nullptr) return nullptr;
  return masks->Floor(list);  // one name: the profile itself
}

}  // namespace interlock::proxy
