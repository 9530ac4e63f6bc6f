// Key files and OpenSSL plumbing shared by the recording key (signing_key.cc) and the
// auditor keys of sealed originals (sealed_box.cc). Internal to interlock_record.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

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

// Opens without following symlinks, checks it is a regular file of at most
// kMaxKeyFileBytes and (when `private_key`) that group/other have no access — the
// PERMISSION_DENIED message names `what` ("the recording key") — then reads it. Buffers
// that held key bytes are wiped.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool private_key, const char* what);

}  // namespace interlock::record::internal
