// SHA-256 through OpenSSL with the algorithm fetched once per process and a reused
// context per thread. OpenSSL 3's one-shot SHA256()/EVP_Digest(EVP_sha256()) look the
// implementation up in a locked table on every call; on the data path (a recording's hash
// chain, every statement's text digest) that lookup cost more than hashing the bytes.
//
//   std::array<uint8_t, 32> d = Sha256("abc");
//   std::string hex = Sha256Hex(statement_text);
//   Sha256Hasher h; h.Update(a); h.Update(b); auto d2 = h.Final();
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace interlock {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

Sha256Digest Sha256(absl::string_view bytes);
// Lower-case hex of Sha256(bytes).
std::string Sha256Hex(absl::string_view bytes);

// Incremental. Aborts if OpenSSL cannot allocate (an invariant, not input).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(absl::string_view bytes);
  // The digest of everything updated since construction or the last Final().
  Sha256Digest Final();

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace interlock
