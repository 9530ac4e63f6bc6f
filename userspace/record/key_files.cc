#include "userspace/record/key_files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace interlock::record::internal {

std::string OpensslError() {
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

absl::StatusOr<EvpPkeyPtr> ParsePemKey(absl::string_view pem, bool private_key, int type,
                                       const char* type_name, const char* what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError(absl::StrCat(what, ": BIO_new_mem_buf failed"));
  EvpPkeyPtr pkey(private_key ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                              : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, private_key ? ": not a PKCS#8 PEM private key: " : ": not a SubjectPublicKeyInfo PEM: ",
        OpensslError()));
  }
  if (EVP_PKEY_id(pkey.get()) != type) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an ", type_name, " key"));
  }
  return pkey;
}

std::string RawPublicKey(EVP_PKEY* pkey) {
  unsigned char raw[kRawPublicKeyBytes];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != kRawPublicKeyBytes) {
    std::abort();  // only called on keys already checked to be Ed25519 or X25519
  }
  return std::string(reinterpret_cast<char*>(raw), len);
}

void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool private_key, const char* what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  if (private_key && (st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat("%s: mode %04o gives group/other access to %s; want 0600",
                                                       path, st.st_mode & 07777, what));
  }
  if (static_cast<size_t>(st.st_size) > kMaxKeyFileBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d bytes > max %d", path, st.st_size, kMaxKeyFileBytes));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      OPENSSL_cleanse(buf, sizeof buf);
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxKeyFileBytes) {
      OPENSSL_cleanse(buf, sizeof buf);
      OPENSSL_cleanse(out.data(), out.size());
      return absl::InvalidArgumentError(absl::StrCat(path, ": grew past max size"));
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return out;
}

}  // namespace interlock::record::internal
