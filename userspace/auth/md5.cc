#include "userspace/auth/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace interlock::auth {
namespace {

constexpr size_t kMd5Len = 16;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// MD5 of a ‖ b as 32 lowercase hex digits written to `hex` (33 bytes with NUL). False
// when MD5 is unavailable.
bool Md5Hex(absl::string_view a, absl::string_view b, char hex[2 * kMd5Len + 1]) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char digest[kMd5Len];
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1 || len != kMd5Len) {
    return false;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < kMd5Len; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 0xF];
  }
  hex[2 * kMd5Len] = '\0';
  OPENSSL_cleanse(digest, sizeof digest);
  return true;
}

}  // namespace

absl::StatusOr<std::string> Md5PasswordResponse(absl::string_view user, absl::string_view password,
                                                const Md5Salt& salt) {
  char inner[2 * kMd5Len + 1] = {};  // md5(password + user): password-equivalent, wiped
  char outer[2 * kMd5Len + 1] = {};
  bool ok =
      Md5Hex(password, user, inner) &&
      Md5Hex(absl::string_view(inner, 2 * kMd5Len),
             absl::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()), outer);
  OPENSSL_cleanse(inner, sizeof inner);
  if (!ok) {
    return absl::FailedPreconditionError(
        "md5: digest unavailable in this OpenSSL configuration (FIPS mode?)");
  }
  return std::string("md5") + outer;
}

}  // namespace interlock::auth
