#include "userspace/mask/hmac_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace interlock::mask {
namespace {

absl::StatusOr<std::string> ReadKey(const std::string& path, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: mode %04o is group/other accessible; want 0600", path, st.st_mode & 07777));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": owned by uid ", st.st_uid, ", not ", ::geteuid()));
  }
  if (st.st_size != static_cast<off_t>(kMaskKeyBytes)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", st.st_size, " bytes, want ", kMaskKeyBytes));
  }
  std::string key(kMaskKeyBytes, '\0');
  size_t off = 0;
  while (off < key.size()) {
    ssize_t n = ::read(fd, key.data() + off, key.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", path));
    if (n == 0) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": short read at ", off));
    }
    off += static_cast<size_t>(n);
  }
  return key;
}

absl::Status WriteAll(int fd, const unsigned char* data, size_t size, const std::string& path) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Creates the key under a temporary name and links it into place. OK with nothing done
// when another process linked its key first (the caller then reads that one).
absl::Status CreateKey(const std::string& dir, const std::string& path) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  ::unlink(tmp.c_str());  // a leftover of ours from a crash; never followed (O_EXCL below)
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  unsigned char key[kMaskKeyBytes];
  absl::Status st;
  if (RAND_bytes(key, sizeof key) != 1) {
    st = absl::InternalError(absl::StrCat(path, ": RAND_bytes failed"));
  } else if (::fchmod(fd.get(), 0600) != 0) {  // the umask may only have narrowed it
    st = ErrnoStatus(errno, absl::StrCat("chmod ", tmp));
  } else {
    st = WriteAll(fd.get(), key, sizeof key, tmp);
    if (st.ok() && ::fsync(fd.get()) != 0) st = ErrnoStatus(errno, absl::StrCat("fsync ", tmp));
  }
  OPENSSL_cleanse(key, sizeof key);
  fd.Reset();
  if (st.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    st = ErrnoStatus(errno, absl::StrCat("link ", tmp, " -> ", path));
  }
  ::unlink(tmp.c_str());
  if (!st.ok()) return st;
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());  // best effort: the new name survives a crash
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> LoadOrCreateMaskKey(const std::string& state_dir) {
  const std::string path = absl::StrCat(state_dir, "/", kMaskKeyFileName);
  for (int attempt = 0; attempt < 2; ++attempt) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd) return ReadKey(path, fd.get());
    if (errno != ENOENT) return ErrnoStatus(errno, absl::StrCat("open ", path));
    absl::Status st = CreateKey(state_dir, path);
    if (!st.ok()) return st;
  }
  return absl::InternalError(absl::StrCat(path, ": created but cannot be opened"));
}

}  // namespace interlock::mask
