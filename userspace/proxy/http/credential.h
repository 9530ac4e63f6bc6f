// The credential interlockd adds to a forwarded HTTP request (config HttpResource.credential)
// and the agent's own credential fields it removes. The secret is current for every
// request, so a rotated file is used at once (CredentialSource: re-read when the file
// changed); it lives in an auth::Secret (wiped when freed) until the forwarded head is
// serialised.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<InjectedField> f, CredentialField(cfg));
//   fields = RemoveFields(fields, AgentCredentialFields(cfg));  // whatever the agent sent
//   if (f) fields.push_back({f->name, f->value.reveal()});
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/auth/secret.h"
#include "userspace/common/clock.h"
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

// CredentialField for one resource, for every request, without reading the file each
// time: the field is rebuilt only when the file's identity (device, inode, size, mode,
// owner, mtime, ctime) changed — a rewrite, an atomic rename, a chmod — and that identity
// is looked at (one stat(2)) at most every kCredentialRecheck. So a rotated secret, or a
// file made readable by others (then refused), takes effect within that bound, and a busy
// resource pays one stat per interval instead of open/fstat/read/close per request. An
// env: reference (the daemon's environment does not change) is read once. Errors are
// never cached: the next request reads again.
inline constexpr absl::Duration kCredentialRecheck = absl::Milliseconds(100);

class CredentialSource {
 public:
  // `clock` (monotonic time) outlives the source.
  CredentialSource(config::HttpCredentialConfig cfg, const Clock* clock);
  absl::StatusOr<std::optional<InjectedField>> Field();

 private:
  bool Unchanged(const struct stat& st) const;

  config::HttpCredentialConfig cfg_;
  const Clock* clock_;
  std::string path_;  // file: references; "" for env:
  bool cached_ = false;
  struct stat cached_stat_ = {};
  absl::Duration checked_at_;  // when cached_stat_ was last confirmed
  std::string name_;
  auth::Secret value_;
};

// The lowercase names of the fields removed from every request before it is forwarded:
// authorization, proxy-authorization and the configured header's name.
std::vector<std::string> AgentCredentialFields(const config::HttpCredentialConfig& cfg);

// "bearer", "basic", "header:X-Api-Key", "" (audit events).
std::string CredentialKindName(const config::HttpCredentialConfig& cfg);

}  // namespace interlock::proxy::http
