#include "userspace/auth/jwt/assertion_key.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::auth::jwt {
namespace {

constexpr absl::string_view kContext = "assertion key";

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string OpensslReason() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

absl::Status CryptoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(kContext, ": ", what, ": ", OpensslReason()));
}

absl::Status InContext(const absl::Status& st) {
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat(kContext, ": ", st.message()));
}

// What `write` writes to a memory BIO, as a string.
template <typename Write>
absl::StatusOr<std::string> ToPem(absl::string_view what, Write write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1) return CryptoError(absl::StrCat(what, " pem"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

int NoPassphrase(char*, int, int, void*) { return -1; }

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AssertionKey>> AssertionKey::FromKey(std::string file, EvpPkeyPtr key) {
  std::unique_ptr<AssertionKey> k(new AssertionKey());
  k->file_ = std::move(file);
  INTERLOCK_ASSIGN_OR_RETURN(std::string jwk,
                             Es256PublicJwk(key.get()));  // INVALID_ARGUMENT: not P-256
  INTERLOCK_ASSIGN_OR_RETURN(k->kid_, Es256JwkThumbprint(key.get()));
  EVP_PKEY* raw = key.get();
  INTERLOCK_ASSIGN_OR_RETURN(k->public_pem_,
                             ToPem("public key", [raw](BIO* bio) { return PEM_write_bio_PUBKEY(bio, raw); }));
  // {"crv":..,"kty":..,"x":..,"y":..} plus what a JWKS consumer wants to see.
  jwk.pop_back();
  k->public_jwk_ = absl::StrCat(jwk, ",\"kid\":\"", k->kid_, "\",\"alg\":\"ES256\",\"use\":\"sig\"}");
  k->key_ = std::move(key);
  return k;
}

absl::StatusOr<std::unique_ptr<AssertionKey>> AssertionKey::Init(const std::string& dir, bool replace) {
  const std::string file = absl::StrCat(dir, "/", kAssertionKeyFile);
  if (!replace && Exists(file)) {
    return absl::AlreadyExistsError(absl::StrCat(kContext, ": ", file, " exists; refusing to replace the key"));
  }
  INTERLOCK_RETURN_IF_ERROR(InContext(MakeDirs(dir, 0700)));
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return CryptoError("generate p-256 key");
  EVP_PKEY* raw = key.get();
  INTERLOCK_ASSIGN_OR_RETURN(std::string pem, ToPem("private key", [raw](BIO* bio) {
                               return PEM_write_bio_PrivateKey(bio, raw, nullptr, nullptr, 0, nullptr, nullptr);
                             }));
  absl::Status written = WriteNewFileAtomic(file, pem, 0600, replace);
  OPENSSL_cleanse(pem.data(), pem.size());
  INTERLOCK_RETURN_IF_ERROR(InContext(written));
  return FromKey(file, std::move(key));
}

absl::StatusOr<std::unique_ptr<AssertionKey>> AssertionKey::Load(const std::string& dir) {
  const std::string file = absl::StrCat(dir, "/", kAssertionKeyFile);
  absl::StatusOr<std::string> pem = ReadPrivateFile(file);
  if (!pem.ok()) return InContext(pem.status());
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  EvpPkeyPtr key(bio != nullptr ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kContext, ": ", file, ": no private key: ", OpensslReason()));
  }
  auto k = FromKey(file, std::move(key));
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat(kContext, ": ", file, ": ", k.status().message()));
  return k;
}

absl::StatusOr<std::string> AssertionKey::Sign(const AssertionClaims& claims) const {
  return SignEs256Jws(key_.get(), kid_, AssertionClaimsJson(claims));
}

}  // namespace interlock::auth::jwt
