#include "userspace/proxy/ssh/host_keys.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/auth/secret.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::proxy::ssh {

void InitLibssh() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

std::string LastError(ssh_session session) {
  const char* e = session != nullptr ? ssh_get_error(session) : nullptr;
  return e != nullptr && *e != '\0' ? std::string(e) : std::string("unknown error");
}

namespace {

absl::StatusOr<KeyPtr> ImportPrivateKey(absl::string_view pem, absl::string_view what) {
  const std::string text(pem);
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_base64(text.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK || key == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": not an unencrypted OpenSSH (or PEM) private key"));
  }
  return KeyPtr(key);
}

absl::StatusOr<std::string> PublicLine(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) {
    return absl::InternalError("could not export the host key's public half");
  }
  std::string line = absl::StrCat(ssh_key_type_to_char(ssh_key_type(key)), " ", b64);
  ssh_string_free_char(b64);
  return line;
}

// The key's public blob (RFC 4253 6.6; for a certificate, the whole certificate).
std::string PublicBlob(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) return "";
  std::string blob;
  const bool ok = absl::Base64Unescape(b64, &blob);
  ssh_string_free_char(b64);
  return ok ? blob : "";
}

// Skips one SSH string (u32 length + bytes); false when `in` is too short.
bool SkipString(absl::string_view& in) {
  if (in.size() < 4) return false;
  const uint32_t n = (uint32_t{static_cast<uint8_t>(in[0])} << 24) | (uint32_t{static_cast<uint8_t>(in[1])} << 16) |
                     (uint32_t{static_cast<uint8_t>(in[2])} << 8) | uint32_t{static_cast<uint8_t>(in[3])};
  if (in.size() - 4 < n) return false;
  in.remove_prefix(4 + n);
  return true;
}

// Whether `cert` certifies `key`'s public key. An OpenSSH certificate (PROTOCOL.certkeys)
// is type || nonce || the key's own public fields || ...; the plain blob is type || the
// same fields. (libssh 0.10 attaches any certificate to any key.)
bool CertificateIsFor(ssh_key cert, ssh_key key) {
  const std::string cert_blob = PublicBlob(cert);
  const std::string key_blob = PublicBlob(key);
  absl::string_view c = cert_blob, k = key_blob;
  if (!SkipString(c) || !SkipString(c) || !SkipString(k) || k.empty()) return false;
  return absl::StartsWith(c, k);
}

}  // namespace

absl::StatusOr<HostKey> HostKey::Load(const std::string& state_dir) {
  InitLibssh();
  const std::string path = absl::StrCat(state_dir, "/", kHostKeyFile);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat(path, ": no SSH host key"));
  }
  // Owner-only, checked on the descriptor it is read from.
  auto pem = ReadPrivateFile(path);
  if (!pem.ok()) return absl::FailedPreconditionError(pem.status().message());
  INTERLOCK_ASSIGN_OR_RETURN(KeyPtr key, ImportPrivateKey(*pem, path));
  HostKey out;
  INTERLOCK_ASSIGN_OR_RETURN(out.public_line_, PublicLine(key.get()));
  INTERLOCK_ASSIGN_OR_RETURN(out.fingerprint_, Sha256Fingerprint(key.get()));
  out.pem_ = *std::move(pem);
  return out;
}

absl::StatusOr<HostKey> HostKey::Init(const std::string& state_dir, bool replace) {
  InitLibssh();
  const std::string path = absl::StrCat(state_dir, "/", kHostKeyFile);
  ssh_key generated = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &generated) != SSH_OK || generated == nullptr) {
    return absl::InternalError("could not generate an Ed25519 key");
  }
  KeyPtr key(generated);
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK || b64 == nullptr) {
    return absl::InternalError("could not export the new host key");
  }
  std::string pem(b64);
  OPENSSL_cleanse(b64, pem.size());
  ssh_string_free_char(b64);
  if (pem.empty() || pem.back() != '\n') pem.push_back('\n');
  absl::Status written = WriteNewFileAtomic(path, pem, 0600, replace);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!written.ok()) return written;
  return Load(state_dir);
}

KeyPtr HostKey::Copy() const {
  auto key = ImportPrivateKey(pem_, "host key");
  return key.ok() ? *std::move(key) : nullptr;
}

absl::StatusOr<std::string> Sha256Fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK || hash == nullptr) {
    return absl::InternalError("could not hash the host key");
  }
  std::string b64 = absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(hash), len));
  ssh_clean_pubkey_hash(&hash);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return absl::StrCat("SHA256:", b64);
}

absl::Status CheckUpstreamHostKey(ssh_session session, const config::SshConfig& config) {
  ssh_key presented = nullptr;
  if (ssh_get_server_publickey(session, &presented) != SSH_OK || presented == nullptr) {
    return absl::PermissionDeniedError("the upstream presented no host key");
  }
  KeyPtr key(presented);
  INTERLOCK_ASSIGN_OR_RETURN(std::string fingerprint, Sha256Fingerprint(key.get()));
  const bool listed = std::find(config.upstream_host_key_sha256.begin(), config.upstream_host_key_sha256.end(),
                                fingerprint) != config.upstream_host_key_sha256.end();
  if (!config.upstream_known_hosts_file.empty()) {
    // libssh 0.10 reads no markers: a "@revoked" line would just not match. Checked here.
    INTERLOCK_ASSIGN_OR_RETURN(std::string text, ReadFile(config.upstream_known_hosts_file));
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK || b64 == nullptr) {
      return absl::InternalError("could not encode the upstream's host key");
    }
    const std::string blob(b64);
    ssh_string_free_char(b64);
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripLeadingAsciiWhitespace(line);
      if (!absl::StartsWith(line, "@revoked")) continue;
      for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        if (field == blob) {
          return absl::PermissionDeniedError(absl::StrCat("the upstream's host key ", fingerprint, " is revoked in ",
                                                          config.upstream_known_hosts_file));
        }
      }
    }
    if (listed) return absl::OkStatus();
    // Only the resource's file: never the user's or the system's known_hosts.
    if (ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, config.upstream_known_hosts_file.c_str()) != SSH_OK ||
        ssh_options_set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != SSH_OK) {
      return absl::InternalError("could not set the known_hosts file");
    }
    switch (ssh_session_is_known_server(session)) {
      case SSH_KNOWN_HOSTS_OK:
        return absl::OkStatus();
      case SSH_KNOWN_HOSTS_ERROR:
        return absl::FailedPreconditionError(
            absl::StrCat(config.upstream_known_hosts_file, ": ", LastError(session)));
      case SSH_KNOWN_HOSTS_NOT_FOUND:
        return absl::FailedPreconditionError(absl::StrCat(config.upstream_known_hosts_file, ": cannot be read"));
      default:
        break;
    }
  } else if (listed) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("the upstream's host key ", fingerprint,
                                                  " is not the one pinned for this resource"));
}

absl::StatusOr<KeyPtr> LoadLoginKey(const config::SshLoginConfig& login) {
  InitLibssh();
  INTERLOCK_ASSIGN_OR_RETURN(auth::Secret pem, auth::ResolveCredentialRef(login.private_key_ref));
  std::string text(pem.reveal());
  text.push_back('\n');  // ResolveCredentialRef strips one; libssh wants the PEM's last line whole
  auto key = ImportPrivateKey(text, login.private_key_ref);
  OPENSSL_cleanse(text.data(), text.size());
  if (!key.ok()) return key.status();
  if (login.certificate_file.empty()) return key;
  ssh_key cert = nullptr;
  if (ssh_pki_import_cert_file(login.certificate_file.c_str(), &cert) != SSH_OK || cert == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(login.certificate_file, ": not an OpenSSH certificate"));
  }
  KeyPtr cert_key(cert);
  if (!CertificateIsFor(cert_key.get(), key->get()) ||
      ssh_pki_copy_cert_to_privkey(cert_key.get(), key->get()) != SSH_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat(login.certificate_file, ": is not a certificate for the key ", login.private_key_ref));
  }
  return key;
}

}  // namespace interlock::proxy::ssh
