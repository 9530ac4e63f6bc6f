// tools/interlock/trust.h: the agent-readable copies of the interception CA that
// `interlock run` writes, when they are rewritten, and which variables it sets.
#include "tools/interlock/trust.h"

#include <sys/stat.h>
#include <utime.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"
#include "userspace/net/interception_ca.h"

namespace interlock::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

constexpr char kSystemCa[] = "-----BEGIN CERTIFICATE-----\nsystem\n-----END CERTIFICATE-----\n";

class AgentTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("interlock-trust-");
    state_ = absl::StrCat(dir_, "/state");
    root_ = absl::StrCat(dir_, "/run/trust");
    system_ = absl::StrCat(dir_, "/system.crt");
    ASSERT_TRUE(WriteFileAtomic(system_, kSystemCa, 0644).ok());
  }
  void TearDown() override { testing::RemoveTree(dir_); }
  absl::StatusOr<std::optional<AgentTrust>> Ensure() {
    return EnsureAgentTrust(state_, root_, system_);
  }
  static int Mode(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  }

  testing::FakeClock clock_{absl::Now()};  // the certificates must be valid now
  std::string dir_, state_, root_, system_;
};

TEST_F(AgentTrustTest, NoCaMeansNothingToTrustAndNothingWritten) {
  auto t = Ensure();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->has_value());
  EXPECT_EQ(Mode(root_), -1);
}

TEST_F(AgentTrustTest, WritesReadableCopiesNamedByFingerprint) {
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_).ok());
  const std::string ca_path = absl::StrCat(state_, "/", net::kInterceptionCaCertFile);
  auto info = ReadCertInfo(ca_path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->sha256.size(), 32u * 3 - 1);
  EXPECT_TRUE(absl::StartsWith(info->subject, "CN=Interlock local interception CA"))
      << info->subject;
  EXPECT_FALSE(info->expired);

  auto t = Ensure();
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE(t->has_value());
  const AgentTrust& trust = **t;
  std::string hex;
  for (char c : info->sha256.substr(0, 23)) {
    if (c != ':') hex.push_back(static_cast<char>(std::tolower(c)));
  }
  EXPECT_EQ(trust.ca_file, absl::StrCat(root_, "/", hex, "/ca.crt"));
  EXPECT_EQ(trust.bundle_file, absl::StrCat(root_, "/", hex, "/bundle.pem"));
  EXPECT_EQ(Mode(root_), 0755);
  EXPECT_EQ(Mode(absl::StrCat(root_, "/", hex)), 0755);
  EXPECT_EQ(Mode(trust.ca_file), 0644);
  EXPECT_EQ(Mode(trust.bundle_file), 0644);
  EXPECT_EQ(*ReadFile(trust.ca_file), *ReadFile(ca_path));
  EXPECT_EQ(*ReadFile(trust.bundle_file), absl::StrCat(kSystemCa, *ReadFile(ca_path)));
}

TEST_F(AgentTrustTest, RewritesTheBundleWhenTheSystemStoreChanges) {
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_).ok());
  auto t = Ensure();
  ASSERT_TRUE(t.ok() && t->has_value()) << t.status();
  const std::string bundle = (*t)->bundle_file;
  // Unchanged inputs: left alone (a stale-looking copy we made is not rewritten).
  ASSERT_TRUE(WriteFileAtomic(bundle, "kept", 0644).ok());
  ASSERT_TRUE(Ensure().ok());
  EXPECT_EQ(*ReadFile(bundle), "kept");
  // A newer system store: rewritten.
  const std::string updated = "-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n";
  ASSERT_TRUE(WriteFileAtomic(system_, updated, 0644).ok());
  struct utimbuf old_times {
    1000000000, 1000000000
  };
  ASSERT_EQ(::utime(bundle.c_str(), &old_times), 0);
  ASSERT_TRUE(Ensure().ok());
  EXPECT_TRUE(absl::StartsWith(*ReadFile(bundle), updated));
}

TEST_F(AgentTrustTest, ANewCaGetsANewDirectory) {
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_).ok());
  auto first = Ensure();
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_, /*replace=*/true).ok());
  auto second = Ensure();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE((*first)->bundle_file, (*second)->bundle_file);
  EXPECT_EQ(*ReadFile((*second)->ca_file),
            *ReadFile(absl::StrCat(state_, "/", net::kInterceptionCaCertFile)));
}

TEST_F(AgentTrustTest, RefusesATrustRootOthersCanWrite) {
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_).ok());
  ASSERT_TRUE(MakeDirs(root_, 0755).ok());
  ASSERT_EQ(::chmod(root_.c_str(), 0777), 0);
  auto t = Ensure();
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << t.status();
  EXPECT_THAT(std::string(t.status().message()), ::testing::HasSubstr(root_));
}

TEST(ReadCertInfo, RejectsAFileWithoutACertificate) {
  std::string dir = testing::MakeTempDir("interlock-trust-");
  const std::string path = absl::StrCat(dir, "/x.crt");
  ASSERT_TRUE(WriteFileAtomic(path, "not a certificate", 0644).ok());
  EXPECT_EQ(ReadCertInfo(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCertInfo(absl::StrCat(dir, "/missing")).status().code(),
            absl::StatusCode::kNotFound);
  testing::RemoveTree(dir);
}

TEST(PlanTrustEnv, SetsWhatIsAbsentAndKeepsWhatTheInvokerSet) {
  const AgentTrust trust{"/t/ca.crt", "/t/bundle.pem"};
  std::vector<std::string> env = {"PATH=/bin", "SSL_CERT_FILE_X=1"};
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  TrustEnv plan = PlanTrustEnv(trust, envp.data());
  EXPECT_THAT(plan.set, ElementsAre(Pair("SSL_CERT_FILE", "/t/bundle.pem"),
                                    Pair("REQUESTS_CA_BUNDLE", "/t/bundle.pem"),
                                    Pair("CURL_CA_BUNDLE", "/t/bundle.pem"),
                                    Pair("NODE_EXTRA_CA_CERTS", "/t/ca.crt")));
  EXPECT_TRUE(plan.kept.empty());

  env = {"SSL_CERT_FILE=/mine.pem", "NODE_EXTRA_CA_CERTS="};  // empty is a choice too
  envp.clear();
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  plan = PlanTrustEnv(trust, envp.data());
  EXPECT_THAT(plan.set, ElementsAre(Pair("REQUESTS_CA_BUNDLE", "/t/bundle.pem"),
                                    Pair("CURL_CA_BUNDLE", "/t/bundle.pem")));
  EXPECT_THAT(plan.kept, ElementsAre("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"));
}

TEST_F(AgentTrustTest, SshKnownHostsGoNextToTheCaAndFollowTheLines) {
  ASSERT_TRUE(net::LocalCa::Init(state_, clock_).ok());
  auto t = Ensure();
  ASSERT_TRUE(t.ok() && t->has_value()) << t.status();
  auto path = EnsureAgentSshKnownHosts(**t, "[127.0.0.71]:22 ssh-ed25519 AAAA interlock:box\n");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, absl::StrCat((*t)->ca_file.substr(0, (*t)->ca_file.rfind('/')), "/ssh_known_hosts"));
  EXPECT_EQ(Mode(*path), 0644);
  EXPECT_EQ(*ReadFile(*path), "[127.0.0.71]:22 ssh-ed25519 AAAA interlock:box\n");
  // A resource removed from the configuration leaves the file.
  ASSERT_TRUE(EnsureAgentSshKnownHosts(**t, "# no SSH resources\n").ok());
  EXPECT_EQ(*ReadFile(*path), "# no SSH resources\n");
}

TEST(PlanSshTrustEnv, NamesTheFileForTheIncludeAndForGit) {
  std::vector<std::string> env = {"PATH=/bin"};
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  TrustEnv plan = PlanSshTrustEnv("/t/ssh_known_hosts", envp.data());
  EXPECT_THAT(plan.set,
              ElementsAre(Pair("INTERLOCK_SSH_KNOWN_HOSTS", "/t/ssh_known_hosts"),
                          Pair("GIT_SSH_COMMAND",
                               "ssh -o 'UserKnownHostsFile=~/.ssh/known_hosts ~/.ssh/known_hosts2 /t/ssh_known_hosts'")));
  env = {"GIT_SSH_COMMAND=ssh -i /mine"};
  envp.clear();
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  plan = PlanSshTrustEnv("/t/ssh_known_hosts", envp.data());
  EXPECT_THAT(plan.set, ElementsAre(Pair("INTERLOCK_SSH_KNOWN_HOSTS", "/t/ssh_known_hosts")));
  EXPECT_THAT(plan.kept, ElementsAre("GIT_SSH_COMMAND"));
}

}  // namespace
}  // namespace interlock::cli
