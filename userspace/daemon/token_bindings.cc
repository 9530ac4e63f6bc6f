#include "userspace/daemon/token_bindings.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/auth/jwt/jwt.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/sha256.h"
#include "userspace/common/unique_fd.h"

namespace interlock::daemon {

namespace {

bool Inside(absl::string_view path, absl::string_view root) {
  return path == root || (absl::StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/');
}

}  // namespace

std::string TokenIdentity(absl::string_view token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() == 3 && !parts[0].empty() && !parts[1].empty()) {
    std::optional<std::string> header = auth::jwt::Base64DecodeAnySpelling(parts[0]);
    std::optional<std::string> payload = auth::jwt::Base64DecodeAnySpelling(parts[1]);
    if (header.has_value() && payload.has_value()) {
      // Length-prefixed, so no split of the same bytes between header and payload
      // collides.
      return absl::StrCat("jws:", Sha256Hex(absl::StrCat(header->size(), ":", *header, *payload)));
    }
  }
  return absl::StrCat("raw:", Sha256Hex(token));
}

void TokenBindings::Bind(const std::string& cgroup_path, const std::string& workload, const std::string& token_file) {
  bindings_[cgroup_path] = Binding{workload, cgroup_path, token_file};
}

void TokenBindings::Unbind(const std::string& cgroup_path) { bindings_.erase(cgroup_path); }

const TokenBindings::Binding* TokenBindings::BindingFor(absl::string_view cgroup_path) const {
  const Binding* best = nullptr;
  for (const auto& [path, b] : bindings_) {
    if (Inside(cgroup_path, path) && (best == nullptr || path.size() > best->cgroup_path.size())) best = &b;
  }
  return best;
}

absl::StatusOr<const TokenBindings::Cached*> TokenBindings::Read(const Binding& b) {
  // O_NOFOLLOW and a regular-file check: the file is named by whoever enrolled the
  // workload, and interlockd reads it as root.
  UniqueFd fd(::open(b.token_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("token file ", b.token_file));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("token file ", b.token_file));
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat("token file ", b.token_file, ": not a regular file"));
  if (st.st_size <= 0 || static_cast<size_t>(st.st_size) > kMaxTokenFileBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("token file ", b.token_file, ": ", st.st_size, " bytes (1..", kMaxTokenFileBytes, " allowed)"));
  }
  Cached& c = cache_[b.token_file];
  int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (c.ino == st.st_ino && c.size == st.st_size && c.mtime_ns == mtime_ns) return &c;
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(n < 0 ? errno : EIO, absl::StrCat("token file ", b.token_file));
    got += static_cast<size_t>(n);
  }
  c.token = std::string(absl::StripAsciiWhitespace(buf));
  c.identity = TokenIdentity(c.token);
  c.ino = st.st_ino;
  c.size = st.st_size;
  c.mtime_ns = mtime_ns;
  return &c;
}

absl::StatusOr<std::optional<std::string>> TokenBindings::TokenFor(absl::string_view cgroup_path) {
  const Binding* b = BindingFor(cgroup_path);
  if (b == nullptr) return std::optional<std::string>();
  auto c = Read(*b);
  if (!c.ok()) return c.status();
  return std::optional<std::string>((*c)->token);
}

std::optional<TokenBindings::Binding> TokenBindings::BoundElsewhere(absl::string_view token_identity,
                                                                    absl::string_view cgroup_path) {
  for (const auto& [path, b] : bindings_) {
    auto c = Read(b);
    if (!c.ok() || (*c)->identity != token_identity) continue;
    if (!Inside(cgroup_path, path)) return b;
  }
  return std::nullopt;
}

absl::StatusOr<auth::TokenClaims> AnyTokenVerifier::Verify(absl::string_view token,
                                                           const auth::TokenContext& context) const {
  bool looks_jwt = std::count(token.begin(), token.end(), '.') == 2;
  const auth::TokenVerifier* v = looks_jwt && jwt_ != nullptr ? jwt_.get() : static_.get();
  if (v == nullptr) v = jwt_.get();
  if (v == nullptr) return absl::UnauthenticatedError("malformed: no token verifier is configured");
  return v->Verify(token, context);
}

absl::StatusOr<auth::TokenClaims> BindingVerifier::Verify(absl::string_view token,
                                                          const auth::TokenContext& context) const {
  if (auto other = bindings_->BoundElsewhere(TokenIdentity(token), context.cgroup_path)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token_bound_elsewhere: the token is bound to enrollment ", other->workload, " (cgroup ", other->cgroup_path,
        ") and was presented by workload ", context.workload.empty() ? "<not enrolled>" : context.workload,
        " (cgroup ", context.cgroup_path, ")"));
  }
  return inner_->Verify(token, context);
}

}  // namespace interlock::daemon
