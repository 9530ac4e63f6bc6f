// ApplyToken: a verified agent token's identity into the policy's subject and the audit
// identity, the same for every protocol that takes agent tokens (PostgreSQL's login,
// HTTP's Authorization or bound token, SSH's password or bound token).
//
//   ApplyToken(&claims, &subject_, &identity_);   // policy and events now name the token
//   ApplyToken(nullptr, &subject_, &identity_);   // back to the workload alone
#pragma once

#include "interlock/v1/identity.pb.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/policy/evaluator.h"

namespace interlock::proxy {

// Null clears both back to the workload alone.
void ApplyToken(const auth::TokenClaims* claims, policy::SubjectFacts* subject, v1::WorkloadIdentity* identity);

}  // namespace interlock::proxy
