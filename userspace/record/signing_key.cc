#include "userspace/record/signing_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

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

using internal::BioContents;
using internal::BioPtr;
using internal::kRawPublicKeyBytes;
using internal::OpensslError;
using internal::ParsePemKey;
using internal::RawPublicKey;
using internal::ReadKeyFile;
using internal::Wipe;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;


}  // namespace

// ---- RecordingPublicKey ----

RecordingPublicKey::RecordingPublicKey(EvpPkeyPtr pkey, std::string raw)
    : pkey_(std::move(pkey)), raw_(std::move(raw)), fingerprint_(HexEncode(HashRecord(raw_))) {}

absl::StatusOr<RecordingPublicKey> RecordingPublicKey::FromPem(absl::string_view pem) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey,
                             ParsePemKey(pem, /*private_key=*/false, EVP_PKEY_ED25519, "ed25519", "public key"));
  std::string raw = RawPublicKey(pkey.get());
  return RecordingPublicKey(std::move(pkey), std::move(raw));
}

absl::StatusOr<RecordingPublicKey> RecordingPublicKey::FromRaw(absl::string_view raw) {
  if (raw.size() != kRawPublicKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("public key: %d bytes, want %d", raw.size(), kRawPublicKeyBytes));
  }
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("public key: ", OpensslError()));
  }
  return RecordingPublicKey(std::move(pkey), std::string(raw));
}

bool RecordingPublicKey::Verify(absl::string_view message, absl::string_view signature) const {
  if (signature.size() != kSignatureBytes) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) std::abort();
  // Ed25519 is "one-shot": no digest is configured and EVP_DigestVerify takes the message.
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

std::string RecordingPublicKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) std::abort();
  return BioContents(bio.get());
}

RecordingPublicKey RecordingPublicKey::Clone() const {
  auto copy = FromRaw(raw_);
  if (!copy.ok()) std::abort();  // raw_ came from a valid key
  return *std::move(copy);
}

// ---- RecordingKey ----

RecordingKey::RecordingKey(EvpPkeyPtr pkey, RecordingPublicKey pub)
    : pkey_(std::move(pkey)), public_(std::move(pub)) {}

RecordingKey RecordingKey::Generate() {
  internal::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw_pkey = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw_pkey) != 1) {
    std::abort();  // no entropy / no memory: nothing sensible to continue with
  }
  EvpPkeyPtr pkey(raw_pkey);
  auto pub = RecordingPublicKey::FromRaw(RawPublicKey(pkey.get()));
  if (!pub.ok()) std::abort();
  return RecordingKey(std::move(pkey), *std::move(pub));
}

absl::StatusOr<RecordingKey> RecordingKey::FromPem(absl::string_view pem) {
  INTERLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey,
                             ParsePemKey(pem, /*private_key=*/true, EVP_PKEY_ED25519, "ed25519", "recording key"));
  INTERLOCK_ASSIGN_OR_RETURN(RecordingPublicKey pub,
                             RecordingPublicKey::FromRaw(RawPublicKey(pkey.get())));
  return RecordingKey(std::move(pkey), std::move(pub));
}

absl::StatusOr<RecordingPublicKey> RecordingKey::LoadPublic(const std::string& path) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string pem, ReadKeyFile(path, /*private_key=*/false, "the recording key"));
  auto pub = RecordingPublicKey::FromPem(pem);
  if (!pub.ok()) return Annotate(pub.status(), path);
  return pub;
}

absl::StatusOr<RecordingKey> RecordingKey::LoadOrCreate(const std::string& state_dir) {
  const std::string dir = absl::StrCat(state_dir, "/keys");
  const std::string key_path = absl::StrCat(dir, "/recording.key");
  const std::string pub_path = absl::StrCat(dir, "/recording.pub");
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(dir, 0700));

  absl::StatusOr<RecordingKey> key = absl::UnknownError("unset");
  absl::StatusOr<std::string> pem = ReadKeyFile(key_path, /*private_key=*/true, "the recording key");
  if (pem.ok()) {
    key = FromPem(*pem);
    Wipe(*pem);
    if (!key.ok()) return Annotate(key.status(), key_path);
  } else if (absl::IsNotFound(pem.status())) {
    // First start. WriteFileAtomic creates the temp file 0600 before any key byte is in it.
    key = Generate();
    std::string private_pem = key->ToPem();
    absl::Status st = WriteFileAtomic(key_path, private_pem, 0600);
    Wipe(private_pem);
    INTERLOCK_RETURN_IF_ERROR(st);
  } else {
    return pem.status();
  }

  // The public half is derived; keep the file in step with the private key.
  std::string want_pub = key->public_key().ToPem();
  absl::StatusOr<std::string> have_pub = ReadFile(pub_path);
  if (!have_pub.ok() || *have_pub != want_pub) {
    INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(pub_path, want_pub, 0644));
  }
  return key;
}

absl::StatusOr<std::string> RecordingKey::Sign(absl::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return absl::ResourceExhaustedError("sign: EVP_MD_CTX_new failed");
  unsigned char sig[kSignatureBytes];
  size_t sig_len = sizeof sig;
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError(absl::StrCat("sign: ", OpensslError()));
  }
  return std::string(reinterpret_cast<char*>(sig), sig_len);
}

std::string RecordingKey::ToPem() const {
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

}  // namespace interlock::record
