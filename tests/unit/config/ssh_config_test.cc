// PROTOCOL_SSH resources: defaults, per-workload logins, and the refusals that keep the
// upstream login safe (a key reference that is a file, a pinned host key, a fixed
// upstream for prefixes), each naming its file, line and field.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/config/config.h"

namespace interlock::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kFingerprint[] = "SHA256:C3WQurTtoXJdnQVLPuGTEeF/1gOjUQ7Dj9g6ortZM6Q";

absl::StatusOr<ServiceConfig> Load(const std::string& resource) {
  return LoadConfigText(absl::StrCat("resources:\n  - name: box\n", resource), "interlock.yaml");
}

TEST(SshConfig, DefaultsAndPerWorkloadLogins) {
  auto cfg = Load(absl::StrCat(
      "    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_SSH\n    ssh:\n"
      "      login: {private_key_ref: \"file:/etc/interlock/box.key\"}\n"
      "      by_workload:\n"
      "        deployer: {user: deploy, private_key_ref: \"file:/etc/interlock/deploy.key\",\n"
      "                   certificate_file: /etc/interlock/deploy.key-cert.pub}\n"
      "      upstream_host_key_sha256: [\"",
      kFingerprint, "\"]\n"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const ResourceConfig& r = cfg->resources[0];
  EXPECT_EQ(r.protocol, Protocol::kSsh);
  ASSERT_TRUE(r.ssh.has_value());
  EXPECT_EQ(r.ssh->login.user, "");  // the agent's user
  EXPECT_EQ(r.ssh->login.private_key_ref, "file:/etc/interlock/box.key");
  EXPECT_EQ(r.ssh->by_workload.at("deployer").user, "deploy");
  EXPECT_EQ(r.ssh->by_workload.at("deployer").certificate_file, "/etc/interlock/deploy.key-cert.pub");
  EXPECT_THAT(r.ssh->upstream_host_key_sha256, ElementsAre(kFingerprint));
  EXPECT_FALSE(r.ssh->allow_sftp);
  EXPECT_THAT(r.ssh->forward_env, ElementsAre("LANG", "LC_*"));
  EXPECT_EQ(r.ssh->upstream_login_timeout, absl::Seconds(10));
}

TEST(SshConfig, RefusesWhatWouldMakeTheLoginUnsafe) {
  // No block at all.
  auto missing = Load("    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_SSH\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("resources[0].ssh: required for PROTOCOL_SSH"));

  // A key in the environment, a relative certificate, no pin, a malformed fingerprint.
  auto bad = Load(
      "    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_SSH\n    ssh:\n"
      "      login: {user: \"a\\nb\", private_key_ref: \"env:SSH_KEY\", certificate_file: box-cert.pub}\n"
      "      upstream_host_key_sha256: [\"MD5:aa:bb\"]\n");
  ASSERT_FALSE(bad.ok());
  const std::string e(bad.status().message());
  EXPECT_THAT(e, HasSubstr("interlock.yaml:7: resources[0].ssh.login.private_key_ref: required: \"file:/absolute/path\""));
  EXPECT_THAT(e, HasSubstr("resources[0].ssh.login.user: must not contain NUL or line breaks"));
  EXPECT_THAT(e, HasSubstr("resources[0].ssh.login.certificate_file: \"box-cert.pub\" is not an absolute path"));
  EXPECT_THAT(e, HasSubstr("resources[0].ssh.upstream_host_key_sha256[0]: \"MD5:aa:bb\" is not a fingerprint"));
  // The key itself pasted where its reference goes is not echoed back.
  auto pasted = Load(
      "    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_SSH\n    ssh:\n"
      "      login: {private_key_ref: \"-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjE\"}\n"
      "      upstream_known_hosts_file: /etc/interlock/box.known_hosts\n");
  ASSERT_FALSE(pasted.ok());
  EXPECT_THAT(pasted.status().message(), ::testing::Not(HasSubstr("b3BlbnNzaC1rZXktdjE")));

  auto unpinned = Load(
      "    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_SSH\n    ssh:\n"
      "      login: {private_key_ref: \"file:/k\"}\n");
  ASSERT_FALSE(unpinned.ok());
  EXPECT_THAT(unpinned.status().message(), HasSubstr("never trusted on first use"));

  // A prefix (or every port) without a fixed upstream: the login would go wherever the
  // agent dialled inside the range.
  auto prefix = Load(absl::StrCat("    address: 127.0.0.0/24\n    port: 22\n    protocol: PROTOCOL_SSH\n    ssh:\n"
                                  "      login: {private_key_ref: \"file:/k\"}\n      upstream_host_key_sha256: [\"",
                                  kFingerprint, "\"]\n"));
  ASSERT_FALSE(prefix.ok());
  EXPECT_THAT(prefix.status().message(), HasSubstr("resources[0].upstream_address: required for a PROTOCOL_SSH resource"));

  // The ssh block on another protocol.
  auto misplaced = Load("    address: 127.0.0.71\n    port: 22\n    protocol: PROTOCOL_TCP\n    ssh: {allow_sftp: true}\n");
  ASSERT_FALSE(misplaced.ok());
  EXPECT_THAT(misplaced.status().message(), HasSubstr("resources[0].ssh: set on a resource whose protocol is not PROTOCOL_SSH"));
}

}  // namespace
}  // namespace interlock::config
