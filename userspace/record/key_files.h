// Key files and OpenSSL plumbing shared by the recording key (signing_key.cc) and the
// auditor keys of sealed originals (sealed_box.cc). Internal to interlock_record.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/record/signing_key.h"  // EvpPkeyPtr

namespace interlock::record::internal {

// An X25519 or Ed25519 PEM key is ~120 bytes; anything near this is not a key file.
inline constexpr size_t kMaxKeyFileBytes = 16 * 1024;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

// The newest OpenSSL error as text; clears the queue so it cannot leak into later calls.
std::string OpensslError();

// The bytes written to a memory BIO.
std::string BioContents(BIO* bio);

// Parses a PEM key — SubjectPublicKeyInfo, or PKCS#8 when `private_key` — and checks it is
// of `type` (EVP_PKEY_ED25519, EVP_PKEY_X25519; `type_name` "ed25519", ...). Errors are
// INVALID_ARGUMENT and start with `what` ("auditor key: not an x25519 key").
absl::StatusOr<EvpPkeyPtr> ParsePemKey(absl::string_view pem, bool private_key, int type,
                                       const char* type_name, const char* what);

// The 32-byte raw public key of an Ed25519 or X25519 key (aborts for any other).
inline constexpr size_t kRawPublicKeyBytes = 32;
std::string RawPublicKey(EVP_PKEY* pkey);

// Overwrites (OPENSSL_cleanse) and clears a buffer that held key material.
void Wipe(std::string& s);

// Opens without following symlinks, checks it is a regular file of at most
// kMaxKeyFileBytes and (when `private_key`) that group/other have no access — the
// PERMISSION_DENIED message names `what` ("the recording key") — then reads it. Buffers
// that held key bytes are wiped.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool private_key, const char* what);

}  // namespace interlock::record::internal
