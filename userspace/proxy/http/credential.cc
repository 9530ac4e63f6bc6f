#include "userspace/proxy/http/credential.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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

CredentialSource::CredentialSource(config::HttpCredentialConfig cfg, const Clock* clock)
    : cfg_(std::move(cfg)), clock_(clock) {
  absl::string_view ref = cfg_.secret_ref;
  if (absl::ConsumePrefix(&ref, "file:")) path_ = std::string(ref);
}

bool CredentialSource::Unchanged(const struct stat& st) const {
  const struct stat& c = cached_stat_;
  return st.st_dev == c.st_dev && st.st_ino == c.st_ino && st.st_size == c.st_size && st.st_mode == c.st_mode &&
         st.st_uid == c.st_uid && st.st_mtim.tv_sec == c.st_mtim.tv_sec && st.st_mtim.tv_nsec == c.st_mtim.tv_nsec &&
         st.st_ctim.tv_sec == c.st_ctim.tv_sec && st.st_ctim.tv_nsec == c.st_ctim.tv_nsec;
}

absl::StatusOr<std::optional<InjectedField>> CredentialSource::Field() {
  if (cfg_.kind == Kind::kNone) return std::nullopt;
  const absl::Duration now = clock_->Monotonic();
  auto cached = [&] { return std::optional<InjectedField>(InjectedField{name_, auth::Secret(value_.reveal())}); };
  if (cached_ && (path_.empty() || now - checked_at_ < kCredentialRecheck)) return cached();
  struct stat st = {};
  const bool stated = path_.empty() || ::stat(path_.c_str(), &st) == 0;
  if (cached_ && stated && Unchanged(st)) {
    checked_at_ = now;
    return cached();
  }
  // Changed, gone or never read: the full read (which also says why it fails).
  cached_ = false;
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<InjectedField> f, CredentialField(cfg_));
  if (!f.has_value() || !stated) return f;
  name_ = f->name;
  value_ = auth::Secret(f->value.reveal());
  cached_stat_ = st;
  checked_at_ = now;
  // A file replaced between the stat and the read is read again at the next check: its
  // identity no longer matches the one kept.
  cached_ = true;
  return f;
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
