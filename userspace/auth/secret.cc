#include "userspace/auth/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace interlock::auth {

Secret::Secret(absl::string_view bytes) : size_(bytes.size()) {
  if (size_ > 0) {
    data_ = std::make_unique<char[]>(size_);
    std::memcpy(data_.get(), bytes.data(), size_);
  }
}

Secret::~Secret() { Wipe(); }

Secret::Secret(Secret&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void Secret::Wipe() {
  if (data_ != nullptr) OPENSSL_cleanse(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

namespace {

class ProcessEnv final : public EnvLookup {
 public:
  std::optional<absl::string_view> Get(const std::string& name) const override {
    const char* value = ::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return absl::string_view(value);
  }
};

bool IsEnvName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Reads the credential file at `path` (already known to be absolute). The fd is opened
// O_NONBLOCK so that a FIFO planted at the path cannot block the daemon; the checks are
// made on the opened fd (fstat), so the file cannot be swapped between check and read.
// Symlinks are followed: secret mounts (Kubernetes, systemd credentials) use them.
absl::StatusOr<Secret> ReadSecretFile(const std::string& path) {
  const std::string context = absl::StrCat("credential file ", path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", context));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", context));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(context, ": not a regular file"));
  }
  // Like libpq's ~/.pgpass check: any group/other bit is refused, not just the read bits.
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s: mode %04o grants access to group or others; chmod 600 it", context,
                        st.st_mode & 07777));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxSecretBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(context, ": ", st.st_size, " bytes > max ", kMaxSecretBytes));
  }
  // One fixed buffer (no std::string growth leaving copies in freed memory), wiped below:
  // the file's size and one byte more, to see it grow while read (read per request by
  // HTTP resources, so not 64 KiB zeroed and wiped each time).
  const size_t cap = static_cast<size_t>(st.st_size) + 1;
  std::unique_ptr<char[]> buf(new char[cap]);
  size_t len = 0;
  absl::Status status;
  while (len < cap) {
    ssize_t n = ::read(fd.get(), buf.get() + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, absl::StrCat("read ", context));
      break;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (status.ok() && len == cap) {
    status = absl::FailedPreconditionError(absl::StrCat(context, ": grew while being read; try again"));
  }
  size_t used = len;
  if (used > 0 && buf[used - 1] == '\n') --used;  // one trailing newline, as editors add
  if (status.ok() && used == 0) {
    status = absl::FailedPreconditionError(absl::StrCat(context, ": empty"));
  }
  Secret secret(status.ok() ? absl::string_view(buf.get(), used) : absl::string_view());
  OPENSSL_cleanse(buf.get(), len);
  if (!status.ok()) return status;
  return secret;
}

}  // namespace

const EnvLookup& RealEnv() {
  static const ProcessEnv* const env = new ProcessEnv();
  return *env;
}

absl::StatusOr<CredentialRef> ParseCredentialRef(absl::string_view ref) {
  if (absl::StartsWith(ref, "file:")) {
    absl::string_view path = ref.substr(5);
    if (path.empty() || path[0] != '/' || path.find('\0') != absl::string_view::npos) {
      // Not echoed: "file:hunter2" may be a pasted value.
      return absl::InvalidArgumentError("credential ref file:<path>: path must be absolute");
    }
    return CredentialRef{CredentialRef::Kind::kFile, std::string(path)};
  }
  if (absl::StartsWith(ref, "env:")) {
    absl::string_view name = ref.substr(4);
    if (!IsEnvName(name)) {
      // The name is not echoed: a malformed one may be a pasted value.
      return absl::InvalidArgumentError(
          "credential ref env:<name>: name must match [A-Za-z_][A-Za-z0-9_]*");
    }
    return CredentialRef{CredentialRef::Kind::kEnv, std::string(name)};
  }
  // Not echoed: an unrecognized reference may be the password itself, pasted by mistake.
  return absl::InvalidArgumentError(
      "credential ref: unknown form (want file:/absolute/path or env:NAME)");
}

absl::StatusOr<Secret> ResolveCredentialRef(absl::string_view ref, const EnvLookup& env) {
  absl::StatusOr<CredentialRef> parsed = ParseCredentialRef(ref);
  if (!parsed.ok()) return parsed.status();
  if (parsed->kind == CredentialRef::Kind::kFile) return ReadSecretFile(parsed->target);

  const std::string context = absl::StrCat("credential ref env:", parsed->target);
  const absl::string_view value = env.Get(parsed->target).value_or(absl::string_view());
  if (value.empty()) {
    return absl::NotFoundError(
        absl::StrCat(context, ": environment variable ", parsed->target, " is not set or empty"));
  }
  if (value.size() > kMaxSecretBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(context, ": ", value.size(), " bytes > max ", kMaxSecretBytes));
  }
  return Secret(value);
}

}  // namespace interlock::auth
