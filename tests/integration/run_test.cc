// `interlock run` as a security boundary: the agent runs unprivileged (no root, no
// capabilities, no supplementary groups, no_new_privs), cannot leave its cgroup, inherits
// no file descriptors it was not explicitly given, and `interlock run`'s own failures are
// exit 125 with CMD never started. Real interlockd, real kernel; the agent is
// `interlock-probe whoami`, which reports /proc/self/status and its open fds.
#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/clock.h"
#include "userspace/common/file_util.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/openssl_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNoCaps[] = "0000000000000000";

// The string value of "key":"value" in the one-line JSON object interlock-probe prints.
std::string Field(const std::string& json, const std::string& key) {
  std::string k = absl::StrCat("\"", key, "\":");
  size_t p = json.find(k);
  if (p == std::string::npos) return "<missing>";
  p += k.size();
  if (json[p] == '"') {
    size_t e = json.find('"', p + 1);
    return json.substr(p + 1, e - p - 1);
  }
  size_t e = json.find_first_of(",}", p);
  return json.substr(p, e - p);
}

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    h_ = std::make_unique<InterlockdHarness>(HarnessOptions{});
    ASSERT_TRUE(h_->Start().ok()) << h_->DaemonLog();
  }
  std::string Probe() { return BinaryPath("interlock-probe"); }
  // `env -u SUDO_UID -u SUDO_GID [VAR=VALUE...] interlock --config C run --as agent ARGS`:
  // the invoker's environment is part of what is tested, so it is set explicitly.
  CommandResult Run(const std::vector<std::string>& env, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "SUDO_UID", "-u", "SUDO_GID"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(),
                {BinaryPath("interlock"), "--config", h_->config_path(), "run", "--as", "agent"});
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  void CaInit() {
    CommandResult r =
        RunCommand({BinaryPath("interlock"), "--config", h_->config_path(), "ca", "init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Where `interlock run` copies the CA for agents: /run/interlock/trust/<16 hex digits>.
  std::string TrustDir() {
    CommandResult r = RunCommand({"/usr/bin/openssl", "x509", "-in",
                                  absl::StrCat(h_->state_dir(), "/interception-ca.crt"), "-noout",
                                  "-fingerprint", "-sha256"});
    std::string hex;  // "sha256 Fingerprint=AB:CD:..." -> "abcd..."
    for (char c : r.out.substr(r.out.find('=') + 1)) {
      if (std::isxdigit(static_cast<unsigned char>(c)) && hex.size() < 16) {
        hex.push_back(static_cast<char>(std::tolower(c)));
      }
    }
    return absl::StrCat("/run/interlock/trust/", hex);
  }
  // Removes TrustDir(), and /run/interlock/trust and /run/interlock when that leaves them
  // empty (rmdir refuses otherwise, so nothing in use goes).
  void RemoveTrustDir() {
    RemoveTree(TrustDir());
    ::rmdir("/run/interlock/trust");
    ::rmdir("/run/interlock");
  }
  size_t Enrollments() { return OfKind(h_->AuditEvents(), v1::AUDIT_KIND_ENROLLMENT).size(); }

  std::unique_ptr<InterlockdHarness> h_;
};

TEST_F(RunTest, AgentRunsAsNobodyWithNoCapabilitiesNoGroupsAndNoNewPrivs) {
  CommandResult r = Run({}, {"--user", "nobody", "--", Probe(), "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Field(r.out, "Uid"), "65534 65534 65534 65534") << r.out;
  EXPECT_EQ(Field(r.out, "Gid"), "65534 65534 65534 65534") << r.out;
  EXPECT_EQ(Field(r.out, "Groups"), "") << r.out;
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(Field(r.out, set), kNoCaps) << set << ": " << r.out;
  }
  EXPECT_EQ(Field(r.out, "NoNewPrivs"), "1") << r.out;
  // Its own session: the invoker's terminal is not its controlling tty (no TIOCSTI).
  EXPECT_EQ(Field(r.out, "sid"), Field(r.out, "pid")) << r.out;

  // HOME, USER and LOGNAME are the agent's, not root's.
  r = Run({"HOME=/root", "USER=root", "LOGNAME=root"},
          {"--user", "nobody", "--", "/bin/sh", "-c", "echo \"$HOME $USER $LOGNAME\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/nonexistent nobody nobody\n");
}

TEST_F(RunTest, NumericUserAndGroupWithoutPasswdEntry) {
  CommandResult r = Run({}, {"--user", "4242", "--group", "4343", "--", Probe(), "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Field(r.out, "Uid"), "4242 4242 4242 4242") << r.out;
  EXPECT_EQ(Field(r.out, "Gid"), "4343 4343 4343 4343") << r.out;
  EXPECT_EQ(Field(r.out, "CapEff"), kNoCaps) << r.out;
  // Without --group there is no primary group to take: refused, not guessed.
  r = Run({}, {"--user", "4242", "--", Probe(), "whoami"});
  EXPECT_EQ(r.exit_code, 125) << r.out;
  EXPECT_THAT(r.err, HasSubstr("run: --user 4242: no passwd entry for uid 4242"));
}

TEST_F(RunTest, AgentCannotMoveItselfOutOfItsCgroup) {
  auto mount = FindCgroup2Mount();
  ASSERT_TRUE(mount.ok()) << mount.status();
  const std::string root = *mount;
  const std::string parent = CgroupDir(root, absl::StrCat(h_->cgroup_root(), "/workloads"));
  // Its own cgroup (a cgroup.procs write there is also how a child would be moved in), the
  // workloads parent, interlock's root and the cgroup2 root: none is writable.
  std::string script =
      absl::StrCat("own=", root, "$(sed -n 's/^0:://p' /proc/self/cgroup); for d in \"$own\" ",
                   parent, " ", CgroupDir(root, h_->cgroup_root()), " ", root, "; do ", Probe(),
                   " move-cgroup \"$d\"; done; sed -n 's/^0:://p' /proc/self/cgroup");
  CommandResult r = h_->RunAgent("agent", {"/bin/sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int refused = 0;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "{")) {
      EXPECT_THAT(std::string(line),
                  HasSubstr(absl::StrCat("/", h_->cgroup_root(), "/workloads/agent.")))
          << "the agent left its cgroup";
      continue;
    }
    EXPECT_EQ(Field(std::string(line), "ok"), "false") << line;
    EXPECT_EQ(Field(std::string(line), "errno"), "13") << line;  // EACCES
    ++refused;
  }
  EXPECT_EQ(refused, 4) << r.out;

  // The control: root (--allow-root) can leave. This is what the drop takes away.
  r = h_->RunAgent("agent", {"/bin/sh", "-c", absl::StrCat(Probe(), " move-cgroup ", parent)},
                   AgentOptions{.as_root = true});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Field(r.out, "ok"), "true") << r.out;
}

TEST_F(RunTest, InheritedFdsAreClosedUnlessPreserved) {
  // An fd the invoker leaks (not close-on-exec), like a socket opened outside the cgroup.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  CommandResult r = Run({}, {"--user", "nobody", "--", Probe(), "whoami"});
  ::close(leaked);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "fds"), "0 1 2") << r.out;

  // --preserve-fds 2 keeps 3 and 4, and only those: 5 and the leaked one are closed.
  leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  std::vector<std::string> argv = {
      "/bin/sh", "-c",
      absl::StrCat("exec 3</dev/null 4</dev/null 5</dev/null; exec /usr/bin/env -u SUDO_UID ",
                   BinaryPath("interlock"), " --config ", h_->config_path(),
                   " run --as agent --user nobody --preserve-fds 2 -- ", Probe(), " whoami")};
  r = RunCommand(argv);
  ::close(leaked);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "fds"), "0 1 2 3 4") << r.out;

  // Preserving an fd that is not open is an error, not a silent gift of whatever
  // interlock itself opens there.
  argv[2] = absl::StrCat("exec 3</dev/null; exec ", BinaryPath("interlock"), " --config ",
                         h_->config_path(), " run --as agent --user nobody --preserve-fds 3 -- ",
                         Probe(), " whoami");
  r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 125) << r.out;
  EXPECT_THAT(r.err, HasSubstr("run: --preserve-fds 3: fd 4 is not open"));
}

TEST_F(RunTest, RootIsRefusedWithoutUserOrSudoUid) {
  std::string dir = MakeTempDir("interlock-run-");
  const std::string marker = absl::StrCat(dir, "/ran");
  CommandResult r = Run({}, {"--", "/usr/bin/touch", marker});
  EXPECT_EQ(r.exit_code, 125) << r.out;
  EXPECT_THAT(r.err, HasSubstr("refusing to run the agent as root"));
  EXPECT_THAT(r.err, HasSubstr("--allow-root"));
  // Also by name and by uid, and through SUDO_UID=0.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--user", "root"}, {"--user", "0"}}) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--", "/usr/bin/touch", marker});
    r = Run({}, a);
    EXPECT_EQ(r.exit_code, 125) << args[1];
    EXPECT_THAT(r.err, HasSubstr("refusing to run the agent as root")) << args[1];
  }
  r = Run({"SUDO_UID=0", "SUDO_GID=0"}, {"--", "/usr/bin/touch", marker});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_THAT(r.err, HasSubstr("SUDO_UID=0 is root"));
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "CMD ran although run refused";
  EXPECT_EQ(Enrollments(), 0u) << "refused before enrolling anything";
  RemoveTree(dir);
}

TEST_F(RunTest, AllowRootRunsAsRoot) {
  CommandResult r = Run({}, {"--allow-root", "--", Probe(), "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "Uid"), "0 0 0 0") << r.out;
  EXPECT_NE(Field(r.out, "CapEff"), kNoCaps) << r.out;
}

TEST_F(RunTest, SudoUidIsTheDefaultUser) {
  CommandResult r = Run({"SUDO_UID=65534", "SUDO_GID=65534"}, {"--", Probe(), "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "Uid"), "65534 65534 65534 65534") << r.out;
  EXPECT_EQ(Field(r.out, "CapBnd"), kNoCaps) << r.out;
  // --user wins over SUDO_UID, and --allow-root does not make SUDO_UID's user root.
  r = Run({"SUDO_UID=65534", "SUDO_GID=65534"},
          {"--allow-root", "--user", "4242", "--group", "4242", "--", Probe(), "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(r.out, "Uid"), "4242 4242 4242 4242") << r.out;
}

TEST_F(RunTest, OwnFailuresExit125AndCmdFailuresKeep126And127) {
  std::string dir = MakeTempDir("interlock-run-");  // 0700 root: nobody cannot enter
  const std::string marker = absl::StrCat(dir, "/ran");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"--user", "no-such-user-xyz"}, "run: --user no-such-user-xyz: no such user"},
      {{"--user", "nobody", "--group", "no-such-group-xyz"},
       "run: --group no-such-group-xyz: no such group"},
      {{"--user", "nobody", "--preserve-fds", "x"},
       "run: --preserve-fds x: not a non-negative number"},
      {{"--user", "nobody", "--preserve-fds", "-1"}, "run: --preserve-fds -1"},
      {{"--user", "nobody", "--bogus"}, "run: unexpected argument \"--bogus\""},
  };
  for (const Case& c : cases) {
    std::vector<std::string> a = c.args;
    a.insert(a.end(), {"--", "/usr/bin/touch", marker});
    CommandResult r = Run({}, a);
    EXPECT_EQ(r.exit_code, 125) << c.message;
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "CMD ran although run failed";

  // CMD's own failures keep their codes: not found 127; not executable by the agent 126
  // (it is in a directory nobody cannot enter — run as root, it would have worked).
  const std::string script = absl::StrCat(dir, "/agent.sh");
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  CommandResult r = Run({}, {"--user", "nobody", "--", script});
  EXPECT_EQ(r.exit_code, 126) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("run: ", script, ": Permission denied")));
  r = Run({}, {"--allow-root", "--", script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Run({}, {"--user", "nobody", "--", "/nonexistent/binary"});
  EXPECT_EQ(r.exit_code, 127) << r.err;
  EXPECT_THAT(r.err, HasSubstr("run: /nonexistent/binary: No such file or directory"));
  RemoveTree(dir);
}

// With the interception CA in the state dir, the agent's TLS clients are told to trust it
// (a bundle for OpenSSL, requests and curl; the CA alone for Node), through copies the
// unprivileged agent can read; without it, nothing is set; what the invoker set is kept.
TEST_F(RunTest, AgentTrustsTheInterceptionCaOnlyWhenThereIsOne) {
  const std::vector<std::string> clean = {"-u", "SSL_CERT_FILE",  "-u", "REQUESTS_CA_BUNDLE",
                                          "-u", "CURL_CA_BUNDLE", "-u", "NODE_EXTRA_CA_CERTS"};
  const std::string show =
      "for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS; do "
      "eval \"echo $v=\\${$v-unset}\"; done";
  CommandResult r = Run(clean, {"--user", "nobody", "--", "/bin/sh", "-c", show});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "SSL_CERT_FILE=unset\nREQUESTS_CA_BUNDLE=unset\nCURL_CA_BUNDLE=unset\n"
            "NODE_EXTRA_CA_CERTS=unset\n");

  ASSERT_NO_FATAL_FAILURE(CaInit());
  const std::string dir = TrustDir();
  const std::string bundle = absl::StrCat(dir, "/bundle.pem");
  r = Run(clean, {"--user", "nobody", "--", "/bin/sh", "-c",
                  absl::StrCat(show,
                               "; openssl verify -CAfile \"$SSL_CERT_FILE\" "
                               "\"$NODE_EXTRA_CA_CERTS\"")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, absl::StrCat("SSL_CERT_FILE=", bundle, "\nREQUESTS_CA_BUNDLE=", bundle,
                                "\nCURL_CA_BUNDLE=", bundle, "\nNODE_EXTRA_CA_CERTS=", dir,
                                "/ca.crt\n", dir, "/ca.crt: OK\n"));
  EXPECT_EQ(r.err, "");

  // The invoker's own setting wins, with a note; the others are still set.
  std::vector<std::string> mine = clean;
  mine.push_back("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt");
  r = Run(mine, {"--user", "nobody", "--", "/bin/sh", "-c", show});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("CURL_CA_BUNDLE=", bundle, "\n")));
  EXPECT_THAT(r.err, HasSubstr("run: note: SSL_CERT_FILE is set; left as is"));
  RemoveTrustDir();
}

// End to end: a real curl and python3-requests, started by `interlock run` as nobody with
// no TLS options of their own, accept an HTTPS server whose certificate the interception
// CA minted (nginx stands in for interlockd's TLS termination); told to use only the
// system store, curl refuses the same server.
TEST_F(RunTest, AgentClientsAcceptCertificatesTheInterceptionCaMints) {
  ASSERT_NO_FATAL_FAILURE(CaInit());
  auto ca = net::LocalCa::Load(h_->state_dir(), RealClock::Get());
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto leaf = (*ca)->MintLeaf("127.0.0.73");
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  const std::string tmp = MakeTempDir("interlock-leaf-");
  net::BioPtr cert_pem(BIO_new(BIO_s_mem()));
  net::BioPtr key_pem(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_X509(cert_pem.get(), leaf->cert.get()), 1);
  ASSERT_EQ(PEM_write_bio_PrivateKey(key_pem.get(), leaf->key.get(), nullptr, nullptr, 0, nullptr,
                                     nullptr),
            1);
  auto text = [](BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(n));
  };
  const std::string cert_file = absl::StrCat(tmp, "/leaf.crt");
  const std::string key_file = absl::StrCat(tmp, "/leaf.key");
  ASSERT_TRUE(WriteFileAtomic(cert_file, text(cert_pem.get()), 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(key_file, text(key_pem.get()), 0600).ok());
  constexpr char kBody[] = R"({"customers":[]})";
  auto nginx = NginxServer::Start({.address = "127.0.0.73",
                                   .tls = true,
                                   .cert_file = cert_file,
                                   .key_file = key_file,
                                   .files = {{.path = "/v1/customers", .body = kBody}}});
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const std::string url = (*nginx)->UrlByAddress("/v1/customers");

  const std::vector<std::string> clean = {"-u", "SSL_CERT_FILE",  "-u", "REQUESTS_CA_BUNDLE",
                                          "-u", "CURL_CA_BUNDLE", "-u", "NODE_EXTRA_CA_CERTS"};
  CommandResult r = Run(clean, {"--user", "nobody", "--", "/usr/bin/curl", "-sS", url});
  EXPECT_EQ(r.exit_code, 0) << r.err << (*nginx)->Log();
  EXPECT_EQ(r.out, kBody);
  r = Run(clean, {"--user", "nobody", "--", "/usr/bin/python3", "-c",
                  "import sys, requests; print(requests.get(sys.argv[1], timeout=10).text)", url});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(kBody, "\n"));

  std::vector<std::string> system_only = clean;
  system_only.push_back("CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt");
  r = Run(system_only, {"--user", "nobody", "--", "/usr/bin/curl", "-sS", url});
  EXPECT_EQ(r.exit_code, 60) << r.out << r.err;  // CURLE_PEER_FAILED_VERIFICATION
  RemoveTree(tmp);
  RemoveTrustDir();
}

}  // namespace
}  // namespace interlock::testing
