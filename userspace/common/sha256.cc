#include "userspace/common/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace interlock {
namespace {

const EVP_MD* FetchedSha256() {
  // Fetched once, never freed: it lives as long as the process (and OpenSSL's default
  // library context).
  static const EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) std::abort();  // no default provider: a broken installation
    return m;
  }();
  return md;
}

void Check(int ok) {
  if (ok != 1) std::abort();  // SHA-256 fails only on allocation failure
}

}  // namespace

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) std::abort();
  Check(EVP_DigestInit_ex(ctx_, FetchedSha256(), nullptr));
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }

void Sha256Hasher::Update(absl::string_view bytes) { Check(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size())); }

Sha256Digest Sha256Hasher::Final() {
  Sha256Digest out;
  unsigned int n = 0;
  Check(EVP_DigestFinal_ex(ctx_, out.data(), &n));
  if (n != kSha256Bytes) std::abort();
  Check(EVP_DigestInit_ex(ctx_, FetchedSha256(), nullptr));  // ready for the next message
  return out;
}

Sha256Digest Sha256(absl::string_view bytes) {
  thread_local Sha256Hasher hasher;
  hasher.Update(bytes);
  return hasher.Final();
}

std::string Sha256Hex(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  Sha256Digest d = Sha256(bytes);
  std::string out(2 * kSha256Bytes, '\0');
  for (size_t i = 0; i < kSha256Bytes; ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 0xf];
  }
  return out;
}

}  // namespace interlock
