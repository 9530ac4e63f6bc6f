// The keys an SSH session stands on: interlockd's host key (created 0600, refused when
// others can read it, fingerprinted as ssh-keygen does) and the resource's login key (an
// owner-only file; a certificate must be for that key). OpenSSH's ssh-keygen is the
// reference for every format.
#include "userspace/proxy/ssh/host_keys.h"

#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"

namespace interlock::proxy::ssh {
namespace {

using ::testing::HasSubstr;
using record::test::TempDir;

// stdout of `command`, or "" when it fails.
std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return ::pclose(p) == 0 ? out : "";
}

std::string KeygenFingerprint(const std::string& path) {
  const std::string out = Shell(absl::StrCat("/usr/bin/ssh-keygen -l -f ", path));
  const size_t at = out.find("SHA256:");
  return at == std::string::npos ? "" : out.substr(at, out.find(' ', at) - at);
}

TEST(HostKey, InitCreatesAnOwnerOnlyKeyOpenSshReads) {
  TempDir dir;
  auto key = HostKey::Init(dir.path(), /*replace=*/false);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string path = dir.File(std::string(kHostKeyFile));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(key->fingerprint(), KeygenFingerprint(path));
  EXPECT_THAT(key->public_line(), ::testing::StartsWith("ssh-ed25519 AAAA"));
  // ssh-keygen derives the same public key from the file.
  EXPECT_THAT(Shell(absl::StrCat("/usr/bin/ssh-keygen -y -f ", path)), HasSubstr(key->public_line()));
  EXPECT_NE(key->Copy(), nullptr);
  // Never overwritten unless asked.
  EXPECT_TRUE(absl::IsAlreadyExists(HostKey::Init(dir.path(), false).status()));
  auto replaced = HostKey::Init(dir.path(), /*replace=*/true);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_NE(replaced->fingerprint(), key->fingerprint());
}

TEST(HostKey, LoadRefusesAMissingOrReadableKey) {
  TempDir dir;
  EXPECT_TRUE(absl::IsNotFound(HostKey::Load(dir.path()).status()));
  ASSERT_TRUE(HostKey::Init(dir.path(), false).ok());
  const std::string path = dir.File(std::string(kHostKeyFile));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto loose = HostKey::Load(dir.path());
  EXPECT_TRUE(absl::IsFailedPrecondition(loose.status())) << loose.status();
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(WriteFileAtomic(path, "not a key\n", 0600).ok());
  auto garbage = HostKey::Load(dir.path());
  EXPECT_TRUE(absl::IsFailedPrecondition(garbage.status()));
  EXPECT_THAT(garbage.status().message(), HasSubstr("not an unencrypted OpenSSH"));
}

TEST(LoginKey, OwnerOnlyFileAndMatchingCertificate) {
  TempDir dir;
  const std::string key = dir.File("login");
  ASSERT_EQ(Shell(absl::StrCat("/usr/bin/ssh-keygen -q -t ed25519 -N '' -C t -f ", key, " && echo ok")), "ok\n");
  config::SshLoginConfig login;
  login.private_key_ref = absl::StrCat("file:", key);
  auto loaded = LoadLoginKey(login);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto fp = Sha256Fingerprint(loaded->get());
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(*fp, KeygenFingerprint(key));

  // A user certificate for the key, signed by a CA: attached. One for another key: refused.
  const std::string ca = dir.File("ca");
  ASSERT_EQ(Shell(absl::StrCat("/usr/bin/ssh-keygen -q -t ed25519 -N '' -C ca -f ", ca, " && ssh-keygen -q -s ", ca,
                             " -I agent -n root ", key, ".pub && echo ok")),
            "ok\n");
  login.certificate_file = absl::StrCat(key, "-cert.pub");
  EXPECT_TRUE(LoadLoginKey(login).ok());
  const std::string other = dir.File("other");
  ASSERT_EQ(Shell(absl::StrCat("/usr/bin/ssh-keygen -q -t ed25519 -N '' -C o -f ", other, " && ssh-keygen -q -s ", ca,
                             " -I other -n root ", other, ".pub && echo ok")),
            "ok\n");
  login.certificate_file = absl::StrCat(other, "-cert.pub");
  auto mismatched = LoadLoginKey(login);
  EXPECT_FALSE(mismatched.ok());
  EXPECT_THAT(mismatched.status().message(), HasSubstr("is not a certificate for the key"));

  // Readable by others: refused, naming the file, never showing the key.
  login.certificate_file.clear();
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto loose = LoadLoginKey(login);
  EXPECT_FALSE(loose.ok());
  EXPECT_THAT(loose.status().message(), HasSubstr(key));
  EXPECT_THAT(loose.status().message(), ::testing::Not(HasSubstr("PRIVATE KEY")));
}

}  // namespace
}  // namespace interlock::proxy::ssh
