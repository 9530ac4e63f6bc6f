// interlock auditor-keygen: makes the auditor's X25519 key pair for sealed originals
// (userspace/record/sealed_box.h). interlockd gets the public half (config
// auditor_public_key_file) and seals the bytes that masking replaced to it; only the private
// half, which stays with the auditor, reads them back (interlock replay --unseal).
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tools/interlock/cli.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"
#include "userspace/record/sealed_box.h"

namespace interlock::cli {

namespace {

// Creates `path` (O_EXCL: never replaces a key) with exactly `mode`, whatever the umask.
absl::StatusOr<UniqueFd> CreateFile(const std::string& path, int mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("create ", path));
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    absl::Status st = ErrnoStatus(errno, absl::StrCat("chmod ", path));
    ::unlink(path.c_str());
    return st;
  }
  return fd;
}

absl::Status WriteAndClose(UniqueFd fd, const std::string& path, absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, absl::StrCat("fsync ", path));
  if (::close(fd.Release()) != 0) return ErrnoStatus(errno, absl::StrCat("close ", path));
  return absl::OkStatus();
}

int AuditorKeygen(const std::string& prefix) {
  if (prefix.empty()) return Fail(2, "auditor-keygen: --out PREFIX is required");
  const std::string key_path = absl::StrCat(prefix, ".key");
  const std::string pub_path = absl::StrCat(prefix, ".pub");

  // Both files are created before anything is written, so an existing one stops us with
  // nothing half-made.
  absl::StatusOr<UniqueFd> key_fd = CreateFile(key_path, 0600);
  if (!key_fd.ok()) return Fail(1, absl::StrCat("auditor-keygen: ", key_fd.status().message()));
  absl::StatusOr<UniqueFd> pub_fd = CreateFile(pub_path, 0644);
  if (!pub_fd.ok()) {
    ::unlink(key_path.c_str());
    return Fail(1, absl::StrCat("auditor-keygen: ", pub_fd.status().message()));
  }
  record::AuditorPrivateKey key = record::AuditorPrivateKey::Generate();
  std::string private_pem = key.PrivatePem();
  absl::Status st = WriteAndClose(*std::move(key_fd), key_path, private_pem);
  OPENSSL_cleanse(private_pem.data(), private_pem.size());
  if (st.ok()) st = WriteAndClose(*std::move(pub_fd), pub_path, key.PublicPem());
  if (!st.ok()) {
    ::unlink(key_path.c_str());
    ::unlink(pub_path.c_str());
    return Fail(1, absl::StrCat("auditor-keygen: ", st.message()));
  }
  std::printf("wrote %s (private, 0600) and %s (public)\nfingerprint %s\n", key_path.c_str(),
              pub_path.c_str(), key.Fingerprint().c_str());
  return 0;
}

}  // namespace

void AddAuditorKeygenCommand(CLI::App& root, const Globals& g, Commands* commands) {
  auto prefix = std::make_shared<std::string>();
  CLI::App* sub = root.add_subcommand("auditor-keygen", "key pair for sealed masked originals");
  sub->add_option("--out", *prefix, "write PREFIX.key and PREFIX.pub (required)")
      ->option_text("PREFIX")
      ->required();
  sub->footer(
      "Writes a new X25519 key pair for sealed originals: PREFIX.key (private, PKCS#8 PEM,\n"
      "mode 0600) and PREFIX.pub (public, PEM, mode 0644). Neither file may exist yet.\n"
      "Give PREFIX.pub to interlockd (config auditor_public_key_file): it then keeps the\n"
      "original bytes that masking replaced, sealed so that only PREFIX.key reads them\n"
      "(interlock replay ID --unseal PREFIX.key). Keep PREFIX.key off the interlockd host.");
  commands->push_back({sub, [prefix] { return AuditorKeygen(*prefix); }});
}

}  // namespace interlock::cli
