// `interlock ca init | show | bundle`, the real binary: what it creates, what it prints,
// and the one-line errors and exit codes (1 failed, 2 bad arguments) of every refusal.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class CaCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("interlock-ca-cli-"); }
  void TearDown() override { RemoveTree(dir_); }
  CommandResult Ca(std::vector<std::string> args) {
    args.insert(args.begin(), {BinaryPath("interlock"), "ca"});
    return RunCommand(args);
  }
  std::string State() const { return absl::StrCat(dir_, "/state"); }
  std::string dir_;
};

TEST_F(CaCliTest, InitShowAndBundle) {
  CommandResult r = Ca({"init", "--state-dir", State()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string cert = absl::StrCat(State(), "/interception-ca.crt");
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("certificate ", cert, "\n")));
  struct stat st {};
  ASSERT_EQ(::stat(absl::StrCat(State(), "/interception-ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // The SSH host key, next to it: 0600, an Ed25519 key OpenSSH reads, its fingerprint
  // printed as ssh-keygen prints it.
  const std::string host_key = absl::StrCat(State(), "/ssh-host-key");
  ASSERT_EQ(::stat(host_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  CommandResult keygen = RunCommand({"/usr/bin/ssh-keygen", "-l", "-f", host_key});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  EXPECT_THAT(keygen.out, HasSubstr("(ED25519)"));
  const std::string fingerprint = keygen.out.substr(keygen.out.find("SHA256:"), 50);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("created a new SSH host key ", fingerprint, "\n")));

  r = Ca({"show", "--state-dir", State()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("certificate .*\n"
                                  "subject     CN=Interlock local interception CA .*\n"
                                  "sha256      ([0-9A-F]{2}:){31}[0-9A-F]{2}\n"
                                  "valid       20[-0-9: ]+ UTC \\.\\. 20[-0-9: ]+ UTC\n"
                                  "ssh host key .*/ssh-host-key\n"
                                  "sha256       SHA256:[A-Za-z0-9+/]{43}\n"));
  CommandResult openssl =
      RunCommand({"/usr/bin/openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"});
  EXPECT_THAT(r.out, HasSubstr(openssl.out.substr(openssl.out.find('=') + 1, 95)));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("ssh host key ", host_key, "\nsha256       ", fingerprint, "\n")));

  const std::string bundle = absl::StrCat(dir_, "/bundle.pem");
  r = Ca({"bundle", "--state-dir", State(), "--out", bundle});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto text = ReadFile(bundle);
  auto ours = ReadFile(cert);
  ASSERT_TRUE(text.ok() && ours.ok());
  EXPECT_GT(text->size(), ours->size());
  EXPECT_EQ(text->substr(text->size() - ours->size()), *ours);
  // The bundle verifies our CA (openssl verify trusts only what -CAfile holds).
  r = RunCommand({"/usr/bin/openssl", "verify", "-CAfile", bundle, cert});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(CaCliTest, RefusalsAreOneLineWithExitCodes) {
  CommandResult r = Ca({"show", "--state-dir", State()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, absl::StrCat("interlock: ca show: no CA in ", State(),
                                " (create one with `interlock ca init`)\n"));
  ASSERT_EQ(Ca({"init", "--state-dir", State()}).exit_code, 0);
  const std::string before = *ReadFile(absl::StrCat(State(), "/interception-ca.crt"));
  r = Ca({"init", "--state-dir", State()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, absl::StrCat("interlock: ca init: a CA and an SSH host key exist in ", State(),
                                " (--replace makes new ones; agents must then trust them)\n"));
  EXPECT_EQ(*ReadFile(absl::StrCat(State(), "/interception-ca.crt")), before);
  const std::string host_before = *ReadFile(absl::StrCat(State(), "/ssh-host-key"));
  r = Ca({"init", "--replace", "--state-dir", State()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(*ReadFile(absl::StrCat(State(), "/interception-ca.crt")), before);
  EXPECT_NE(*ReadFile(absl::StrCat(State(), "/ssh-host-key")), host_before);
  // A state dir from before SSH (a CA, no host key): init adds the key, keeps the CA.
  ASSERT_EQ(::unlink(absl::StrCat(State(), "/ssh-host-key").c_str()), 0);
  const std::string ca_now = *ReadFile(absl::StrCat(State(), "/interception-ca.crt"));
  r = Ca({"init", "--state-dir", State()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created a new SSH host key SHA256:"));
  EXPECT_EQ(*ReadFile(absl::StrCat(State(), "/interception-ca.crt")), ca_now);

  ASSERT_EQ(::chmod(absl::StrCat(State(), "/interception-ca.key").c_str(), 0644), 0);
  r = Ca({"show", "--state-dir", State()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("want 0600"));

  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"frob"}, {"bundle"}, {"show", "--replace"}}) {
    r = Ca(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, MatchesRegex("interlock: ca[^\n]*\n")) << r.err;
  }
}

}  // namespace
}  // namespace interlock::testing
