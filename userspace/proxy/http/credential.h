// The credential interlockd adds to a forwarded HTTP request (config HttpResource.credential)
// and the agent's own credential fields it removes. The secret is read from its reference
// for every request, so a rotated file is used at once; it lives in an auth::Secret (wiped
// when freed) until the forwarded head is serialised.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<InjectedField> f, CredentialField(cfg));
//   fields = RemoveFields(fields, AgentCredentialFields(cfg));  // whatever the agent sent
//   if (f) fields.push_back({f->name, f->value.reveal()});
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/auth/secret.h"
#include "userspace/config/config.h"

namespace interlock::proxy::http {

struct InjectedField {
  std::string name;    // "Authorization", or the configured header
  auth::Secret value;  // "Bearer <secret>", "Basic <base64>", or the secret
};

// The field to add, or nullopt when the resource injects none. Errors name the reference,
// never the secret (NOT_FOUND, PERMISSION_DENIED from auth::ResolveCredentialRef;
// INVALID_ARGUMENT when the secret holds a byte a field value cannot: CR, LF, NUL).
absl::StatusOr<std::optional<InjectedField>> CredentialField(const config::HttpCredentialConfig& cfg);

// The lowercase names of the fields removed from every request before it is forwarded:
// authorization, proxy-authorization and the configured header's name.
std::vector<std::string> AgentCredentialFields(const config::HttpCredentialConfig& cfg);

// "bearer", "basic", "header:X-Api-Key", "" (audit events).
std::string CredentialKindName(const config::HttpCredentialConfig& cfg);

}  // namespace interlock::proxy::http
