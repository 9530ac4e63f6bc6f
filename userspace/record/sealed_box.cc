#include "userspace/record/sealed_box.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/record/format.h"
#include "userspace/record/key_files.h"

namespace interlock::record {
namespace {

// AES-256-GCM nonce: 4 zero bytes || u64 big-endian counter (NIST SP 800-38D 8.2.1, the
// deterministic construction: one key per session, the counter never repeats).
constexpr size_t kNonceBytes = 12;
using internal::BioContents;
using internal::BioPtr;
using internal::OpensslError;
using internal::ParsePemKey;
using internal::PkeyCtxPtr;
using internal::RawPublicKey;
using internal::ReadKeyFile;
using internal::Wipe;
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// A fixed-size secret on the stack, wiped when it goes out of scope.
template <size_t N>
struct SecretBytes {
  std::array<unsigned char, N> b{};
  ~SecretBytes() { OPENSSL_cleanse(b.data(), b.size()); }
};

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}


absl::StatusOr<EvpPkeyPtr> PublicFromRaw(absl::string_view raw, absl::string_view what) {
  if (raw.size() != kX25519KeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d bytes, want %d", what, raw.size(), kX25519KeyBytes));
  }
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, U8(raw), raw.size()));
  if (pkey == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": ", OpensslError()));
  return pkey;
}

// X25519(own, peer) -> HKDF-SHA256 (sealed_box.h) into `key`. Both sides pass the same
// ephemeral and auditor public keys for the salt.
absl::Status DeriveKey(EVP_PKEY* own, EVP_PKEY* peer, absl::string_view ephemeral_public,
                       absl::string_view auditor_public, std::array<unsigned char, 32>& key) {
  SecretBytes<kX25519KeyBytes> shared;
  {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(own, nullptr));
    size_t len = shared.b.size();
    if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1) {
      return absl::InternalError(absl::StrCat("x25519: ", OpensslError()));
    }
    // OpenSSL refuses an all-zero shared secret (a low-order peer point, RFC 7748 section 6.1).
    if (EVP_PKEY_derive(ctx.get(), shared.b.data(), &len) != 1 || len != shared.b.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("x25519: key agreement failed (low-order public key?): ", OpensslError()));
    }
  }
  std::string salt = absl::StrCat(ephemeral_public, auditor_public);
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) return absl::InternalError(absl::StrCat("hkdf: ", OpensslError()));
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> kctx(EVP_KDF_CTX_new(kdf.get()));
  if (kctx == nullptr) return absl::InternalError(absl::StrCat("hkdf: ", OpensslError()));
  char digest[] = "SHA256";
  std::string info(kSealedOriginalsInfo);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared.b.data(), shared.b.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(kctx.get(), key.data(), key.size(), params) != 1) {
    return absl::InternalError(absl::StrCat("hkdf: ", OpensslError()));
  }
  return absl::OkStatus();
}

std::array<unsigned char, kNonceBytes> Nonce(uint64_t counter) {
  std::array<unsigned char, kNonceBytes> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<unsigned char>(counter >> (56 - 8 * i));
  return n;
}

}  // namespace

// ---- keys ----

std::string AuditorKeyFingerprint(absl::string_view raw_public_key) {
  return HexEncode(HashRecord(raw_public_key));  // HashRecord is plain SHA-256
}

absl::StatusOr<std::string> AuditorPublicKeyFromPem(absl::string_view pem) {
  INTERLOCK_ASSIGN_OR_RETURN(
      EvpPkeyPtr pkey, ParsePemKey(pem, /*private_key=*/false, EVP_PKEY_X25519, "x25519", "auditor public key"));
  return RawPublicKey(pkey.get());
}

absl::StatusOr<std::string> LoadAuditorPublicKey(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string pem, ReadKeyFile(path, /*private_key=*/false, "the auditor public key"));
  auto raw = AuditorPublicKeyFromPem(pem);
  if (!raw.ok()) return Annotate(raw.status(), path);
  return raw;
}

AuditorPrivateKey::AuditorPrivateKey(EvpPkeyPtr pkey, std::string raw_public)
    : pkey_(std::move(pkey)), public_(std::move(raw_public)) {}

AuditorPrivateKey AuditorPrivateKey::Generate() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw_pkey = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw_pkey) != 1) {
    std::abort();  // no entropy / no memory: nothing sensible to continue with
  }
  EvpPkeyPtr pkey(raw_pkey);
  std::string pub = RawPublicKey(pkey.get());
  return AuditorPrivateKey(std::move(pkey), std::move(pub));
}

absl::StatusOr<AuditorPrivateKey> AuditorPrivateKey::FromPem(absl::string_view pem) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey,
                             ParsePemKey(pem, /*private_key=*/true, EVP_PKEY_X25519, "x25519", "auditor key"));
  std::string pub = RawPublicKey(pkey.get());
  return AuditorPrivateKey(std::move(pkey), std::move(pub));
}

std::string AuditorPrivateKey::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0,
                                                 nullptr, nullptr) != 1) {
    std::abort();
  }
  std::string out = BioContents(bio.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  if (n > 0) OPENSSL_cleanse(data, static_cast<size_t>(n));
  return out;
}

std::string AuditorPrivateKey::PublicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) std::abort();
  return BioContents(bio.get());
}

absl::StatusOr<AuditorPrivateKey> LoadAuditorPrivateKey(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string pem, ReadKeyFile(path, /*private_key=*/true, "the auditor private key"));
  auto key = AuditorPrivateKey::FromPem(pem);
  Wipe(pem);
  if (!key.ok()) return Annotate(key.status(), path);
  return key;
}

std::string SealedDataAad(absl::string_view session_id, uint64_t seq) {
  std::string aad(session_id);
  for (int i = 7; i >= 0; --i) aad.push_back(static_cast<char>(seq >> (8 * i)));
  return aad;
}

// ---- SealingStream ----

absl::StatusOr<std::unique_ptr<SealingStream>> SealingStream::Create(
    absl::string_view auditor_public_key, uint64_t first_counter) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr auditor,
                             PublicFromRaw(auditor_public_key, "auditor public key"));
  std::unique_ptr<SealingStream> s(new SealingStream());
  {
    // The ephemeral private key lives only in this scope: EVP_PKEY_free wipes it.
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
    EVP_PKEY* raw_pkey = nullptr;
    if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        EVP_PKEY_keygen(ctx.get(), &raw_pkey) != 1) {
      return absl::InternalError(absl::StrCat("sealed originals: keygen: ", OpensslError()));
    }
    EvpPkeyPtr ephemeral(raw_pkey);
    s->ephemeral_public_ = RawPublicKey(ephemeral.get());
    absl::Status st = DeriveKey(ephemeral.get(), auditor.get(), s->ephemeral_public_,
                                auditor_public_key, s->key_);
    if (!st.ok()) return Annotate(st, "sealed originals");
  }
  s->auditor_fingerprint_ = AuditorKeyFingerprint(auditor_public_key);
  s->next_counter_ = first_counter;
  return s;
}

SealingStream::~SealingStream() { OPENSSL_cleanse(key_.data(), key_.size()); }

absl::StatusOr<SealingStream::Sealed> SealingStream::Seal(absl::string_view plaintext,
                                                          absl::string_view aad) {
  if (exhausted_) {
    return absl::ResourceExhaustedError("seal: nonce counter exhausted (2^64 boxes sealed)");
  }
  if (plaintext.size() > static_cast<size_t>(INT_MAX) - kSealTagBytes ||
      aad.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("seal: %d plaintext bytes, %d aad bytes: too long", plaintext.size(),
                        aad.size()));
  }
  Sealed out;
  out.counter = next_counter_;
  // The counter is consumed before anything can fail, so no nonce is ever used twice.
  if (next_counter_ == UINT64_MAX) {
    exhausted_ = true;
  } else {
    ++next_counter_;
  }
  const auto nonce = Nonce(out.counter);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  out.ciphertext.resize(plaintext.size() + kSealTagBytes);
  auto* ct = reinterpret_cast<unsigned char*>(out.ciphertext.data());
  int len = 0, fin = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, U8(aad), static_cast<int>(aad.size())) != 1) ||
      (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), ct, &len, U8(plaintext),
                                               static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx.get(), ct + (plaintext.empty() ? 0 : len), &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kSealTagBytes,
                          ct + plaintext.size()) != 1) {
    return absl::InternalError(absl::StrCat("seal: aes-256-gcm: ", OpensslError()));
  }
  return out;
}

// ---- UnsealingStream ----

absl::StatusOr<std::unique_ptr<UnsealingStream>> UnsealingStream::Create(
    const AuditorPrivateKey& auditor_key, absl::string_view ephemeral_public_key) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr ephemeral,
                             PublicFromRaw(ephemeral_public_key, "sealed originals key"));
  std::unique_ptr<UnsealingStream> u(new UnsealingStream());
  absl::Status st = DeriveKey(auditor_key.pkey_.get(), ephemeral.get(), ephemeral_public_key,
                              auditor_key.public_key(), u->key_);
  if (!st.ok()) return Annotate(st, "unseal");
  return u;
}

UnsealingStream::~UnsealingStream() { OPENSSL_cleanse(key_.data(), key_.size()); }

absl::StatusOr<std::string> UnsealingStream::Open(uint64_t counter,
                                                  absl::string_view ciphertext_and_tag,
                                                  absl::string_view aad) const {
  if (ciphertext_and_tag.size() < kSealTagBytes) {
    return absl::DataLossError(absl::StrFormat("unseal: %d bytes, shorter than the %d-byte tag",
                                               ciphertext_and_tag.size(), kSealTagBytes));
  }
  if (ciphertext_and_tag.size() > static_cast<size_t>(INT_MAX) ||
      aad.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("unseal: input too long");
  }
  const absl::string_view ct = ciphertext_and_tag.substr(0, ciphertext_and_tag.size() -
                                                                kSealTagBytes);
  std::array<unsigned char, kSealTagBytes> tag;
  std::copy_n(U8(ciphertext_and_tag) + ct.size(), kSealTagBytes, tag.begin());
  const auto nonce = Nonce(counter);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(ct.size(), '\0');
  auto* pt = reinterpret_cast<unsigned char*>(out.data());
  int len = 0, fin = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, U8(aad), static_cast<int>(aad.size())) != 1) ||
      (!ct.empty() &&
       EVP_DecryptUpdate(ctx.get(), pt, &len, U8(ct), static_cast<int>(ct.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kSealTagBytes, tag.data()) != 1) {
    Wipe(out);
    return absl::InternalError(absl::StrCat("unseal: aes-256-gcm: ", OpensslError()));
  }
  if (EVP_DecryptFinal_ex(ctx.get(), pt + (ct.empty() ? 0 : len), &fin) != 1) {
    ERR_clear_error();
    Wipe(out);  // unauthenticated plaintext is never handed out
    return absl::DataLossError(
        "unseal: does not authenticate (wrong auditor key, or the sealed record was altered)");
  }
  return out;
}

}  // namespace interlock::record
