// Credential bytes and where they come from.
//
// A `Secret` owns credential bytes (an upstream password, a token). It cannot be printed,
// streamed, copied or implicitly converted to a string; the only way to read it is an
// explicit `reveal()`, so every place that touches the bytes is greppable. Its memory is
// wiped (OPENSSL_cleanse) when it is destroyed or overwritten.
//
// Configuration never holds credentials, only references to them, resolved when needed:
//
//   file:/etc/interlock/pg-password   a regular file, mode 0600 or stricter; one trailing
//                                     newline is stripped
//   env:PG_PASSWORD                   an environment variable of the daemon
//
//   INTERLOCK_ASSIGN_OR_RETURN(Secret password, ResolveCredentialRef(upstream.password_ref));
//   INTERLOCK_ASSIGN_OR_RETURN(ScramClient scram,
//                              ScramClient::Create(password.reveal(), cb, nonce));
//
// Errors name the reference (the path or the variable) and never contain secret bytes.
// An unrecognized reference is not echoed either: it may be a password pasted by mistake.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::auth {

// Largest credential ResolveCredentialRef accepts (file size or variable length).
inline constexpr size_t kMaxSecretBytes = 64 * 1024;

class Secret {
 public:
  // An empty secret.
  Secret() = default;
  // Copies `bytes`. The caller remains responsible for wiping its own copy.
  explicit Secret(absl::string_view bytes);
  ~Secret();

  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  // The credential bytes. Valid until this Secret is destroyed, moved from or assigned.
  absl::string_view reveal() const { return absl::string_view(data_.get(), size_); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void Wipe();

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
};

// Reads environment variables; injected so tests need not touch the process environment.
class EnvLookup {
 public:
  virtual ~EnvLookup() = default;
  // The value of `name`, or nullopt when it is not set. The view stays valid until the
  // environment (or this lookup) changes.
  virtual std::optional<absl::string_view> Get(const std::string& name) const = 0;
};

// The process environment (getenv).
const EnvLookup& RealEnv();

// A parsed credential reference.
struct CredentialRef {
  enum class Kind { kFile, kEnv };
  Kind kind = Kind::kFile;
  std::string target;  // the absolute path, or the variable name
};

// Checks the syntax only (for config validation): `file:` followed by an absolute path,
// or `env:` followed by [A-Za-z_][A-Za-z0-9_]*. INVALID_ARGUMENT otherwise.
absl::StatusOr<CredentialRef> ParseCredentialRef(absl::string_view ref);

// Resolves `ref` to the credential it names. Errors:
//   INVALID_ARGUMENT     bad syntax (see ParseCredentialRef)
//   NOT_FOUND            the file does not exist; the variable is unset or empty
//   PERMISSION_DENIED    the file grants any access to group or others (chmod 600), or
//                        cannot be opened
//   FAILED_PRECONDITION  not a regular file (FIFOs are refused without blocking), empty,
//                        or larger than kMaxSecretBytes
absl::StatusOr<Secret> ResolveCredentialRef(absl::string_view ref,
                                            const EnvLookup& env = RealEnv());

}  // namespace interlock::auth
