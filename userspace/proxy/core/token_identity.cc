#include "userspace/proxy/core/token_identity.h"

namespace interlock::proxy {

void ApplyToken(const auth::TokenClaims* claims, policy::SubjectFacts* subject, v1::WorkloadIdentity* identity) {
  subject->claims.clear();
  identity->clear_token_groups();
  if (claims == nullptr) {
    subject->has_token = false;
    subject->sub.clear();
    subject->groups.clear();
    identity->clear_token_issuer();
    identity->clear_token_subject();
    return;
  }
  subject->has_token = true;
  subject->sub = claims->subject;
  subject->groups = claims->groups;
  for (const auto& [k, v] : claims->string_claims) subject->claims[k] = v;
  if (!claims->azp.empty()) subject->claims["azp"] = claims->azp;
  identity->set_token_issuer(claims->issuer);
  identity->set_token_subject(claims->subject);
  for (const std::string& g : claims->groups) identity->add_token_groups(g);
}

}  // namespace interlock::proxy
