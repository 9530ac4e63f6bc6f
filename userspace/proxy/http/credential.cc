#include "userspace/proxy/http/credential.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::proxy::http {

using Kind = config::HttpCredentialConfig::Kind;

absl::StatusOr<std::optional<InjectedField>> CredentialField(const config::HttpCredentialConfig& cfg) {
  if (cfg.kind == Kind::kNone) return std::nullopt;
  INTERLOCK_ASSIGN_OR_RETURN(auth::Secret secret, auth::ResolveCredentialRef(cfg.secret_ref));
  for (char c : secret.reveal()) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat(cfg.secret_ref, ": the secret holds a line break or NUL, which no header value may"));
    }
  }
  InjectedField f;
  switch (cfg.kind) {
    case Kind::kBearer: {
      f.name = "Authorization";
      std::string v = absl::StrCat("Bearer ", secret.reveal());
      f.value = auth::Secret(v);
      std::fill(v.begin(), v.end(), '\0');
      break;
    }
    case Kind::kBasic: {
      f.name = "Authorization";
      std::string pair = absl::StrCat(cfg.user, ":", secret.reveal());
      std::string v = absl::StrCat("Basic ", absl::Base64Escape(pair));
      f.value = auth::Secret(v);
      std::fill(pair.begin(), pair.end(), '\0');
      std::fill(v.begin(), v.end(), '\0');
      break;
    }
    case Kind::kHeader:
      f.name = cfg.header_name;
      f.value = std::move(secret);
      break;
    case Kind::kNone:
      return std::nullopt;
  }
  return std::optional<InjectedField>(std::move(f));
}

std::vector<std::string> AgentCredentialFields(const config::HttpCredentialConfig& cfg) {
  std::vector<std::string> out = {"authorization", "proxy-authorization"};
  if (cfg.kind == Kind::kHeader) out.push_back(absl::AsciiStrToLower(cfg.header_name));
  return out;
}

std::string CredentialKindName(const config::HttpCredentialConfig& cfg) {
  switch (cfg.kind) {
    case Kind::kBearer: return "bearer";
    case Kind::kBasic: return "basic";
    case Kind::kHeader: return absl::StrCat("header:", cfg.header_name);
    case Kind::kNone: return "";
  }
  return "";
}

}  // namespace interlock::proxy::http
