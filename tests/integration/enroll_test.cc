// Enrolling what already runs, as a platform team would: a unix user (every process of
// that uid, in whatever cgroup it starts), a systemd unit or slice by its cgroup's name
// (now, and after every restart of the unit), with the programs attached at the cgroup2
// root as in production, and interlockd itself staying in the cgroup it was started in.
//
// The agents are unprivileged (setpriv) and placed by the test into cgroups of its own
// subtree outside interlock's, standing in for systemd's units and slices (this machine
// has no systemd as PID 1; the names are what systemd would make).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/cgroup_fs.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

constexpr uint32_t kNobody = 65534;

class EnrollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    ASSERT_TRUE(echo_.Start("127.0.0.42", 0).ok());
    auto mount = FindCgroup2Mount();
    ASSERT_TRUE(mount.ok()) << mount.status();
    mount_ = *mount;
    suffix_ = UniqueSuffix();
    // Test ids no other process on the host has (no passwd entries).
    uid_ = 61000 + static_cast<uint32_t>(::getpid() % 4000);
    outside_ = absl::StrCat(mount_, "/interlock-it-enroll-", suffix_);
    ASSERT_TRUE(MakeCgroupDirs(outside_).ok());
  }

  void TearDown() override {
    if (outside_.empty()) return;
    std::string error;
    EXPECT_TRUE(RemoveCgroupTree(outside_, &error)) << error;
  }

  // A directory below the test's own subtree, created (with parents) now.
  std::string Cgroup(const std::string& rel) {
    std::string dir = absl::StrCat(outside_, "/", rel);
    EXPECT_TRUE(MakeCgroupDirs(dir).ok()) << dir;
    return dir;
  }

  CommandResult RunIn(const std::string& dir, uint32_t id, std::vector<std::string> argv) {
    return RunInCgroup(dir, id, argv);
  }

  // Connects to the protected echo service from `dir` as `id`; the agent sees the
  // address it dialled either way.
  void Connect(const std::string& dir, uint32_t id) {
    CommandResult r = RunIn(dir, id,
                            {BinaryPath("interlock-probe"), "connect", "127.0.0.42",
                             absl::StrCat(echo_.port())});
    EXPECT_EQ(r.exit_code, 0) << dir << ": " << r.out << r.err;
    EXPECT_EQ(ProbeField(r.out, "peer"), absl::StrCat("127.0.0.42:", echo_.port())) << r.out;
    EXPECT_EQ(ProbeField(r.out, "reply"), "ping\\n") << r.out;
  }

  std::unique_ptr<InterlockdHarness> Harness(const std::string& yaml,
                                             const std::string& daemon_cgroup_dir = "") {
    return std::make_unique<InterlockdHarness>(
        HarnessOptions{.resources = {{"echo", "127.0.0.42", echo_.port()}},
                       .extra_yaml = yaml,
                       .attach_at_root = true,
                       .daemon_cgroup_dir = daemon_cgroup_dir});
  }

  // Workload names of the sessions interlockd started, once `n` have ended.
  std::vector<std::string> SessionWorkloads(const InterlockdHarness& h, size_t n) {
    EXPECT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() >= n; }))
        << h.DaemonLog();
    std::vector<std::string> names;
    for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START)) {
      names.push_back(e.identity().workload());
    }
    return names;
  }

  tools::EchoServer echo_;
  std::string mount_;
  std::string suffix_;
  std::string outside_;
  uint32_t uid_ = 0;
};

// `users: [UID]`: a process of that uid is enforced in a cgroup interlock never heard of,
// and in a sub-cgroup of it; another uid in the same cgroup is not; a cgroup enrollment
// wins over the user's (its workload is the more specific one).
TEST_F(EnrollTest, UserIsEnforcedInEveryCgroupAndACgroupEnrollmentWins) {
  auto h = Harness(absl::StrCat("users: [\"", uid_, "\"]\nenrollments:\n  - name: svc\n"
                                "    cgroup_path: {cgroup_root}/agents/svc\n"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string user = absl::StrCat("uid-", uid_);

  Connect(Cgroup("anywhere"), uid_);
  Connect(Cgroup("anywhere/deeper"), uid_);
  Connect(Cgroup("anywhere"), kNobody);  // not enrolled: straight to the service
  Connect(absl::StrCat(mount_, "/", h->cgroup_root(), "/agents/svc"), uid_);

  EXPECT_THAT(SessionWorkloads(*h, 3), UnorderedElementsAreArray({user, user, std::string("svc")}));
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_SESSION_START)) {
    EXPECT_EQ(e.identity().uid(), uid_);
  }
  EXPECT_EQ(echo_.accepted(), 4u) << "three through interlockd, one direct";

  CommandResult status = h->Cli({"status"});
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("user ", user, " (uid ", uid_, ")")));
  EXPECT_THAT(status.out, HasSubstr("attached at " + mount_));
}

// `units:` and `slices:` enroll cgroups by name wherever they are: one that exists at
// start, the same one re-created (a unit restart), and, below an enrolled slice, each
// unit under its own name (also below a sub-slice). Another name is not enrolled.
TEST_F(EnrollTest, UnitsAndSlicesAreEnrolledByNameWhereverTheirCgroupIs) {
  const std::string unit = absl::StrCat("agent-", suffix_, ".service");
  const std::string slice = absl::StrCat("agents-", suffix_, ".slice");
  const std::string existing = Cgroup(absl::StrCat("a.slice/", unit));
  const std::string container = Cgroup(absl::StrCat("machine.slice/ctr", suffix_, "-1f2e.scope"));
  auto h = Harness(absl::StrCat("units: [", unit, ", \"ctr", suffix_, "-*.scope\"]\nslices: [",
                                slice, "]\n"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();

  Connect(existing, kNobody);
  ASSERT_TRUE(WaitFor([&] { return ::rmdir(existing.c_str()) == 0; })) << strerror(errno);
  Connect(Cgroup(absl::StrCat("a.slice/", unit)), kNobody);  // the unit restarted
  Connect(Cgroup(absl::StrCat(slice, "/billing-", suffix_, ".service")), kNobody);
  Connect(Cgroup(absl::StrCat(slice, "/agents-", suffix_, "-eu.slice/etl-", suffix_, ".scope/x")),
          kNobody);
  Connect(Cgroup(absl::StrCat("a.slice/other-", suffix_, ".service")), kNobody);
  // A container's scope, by pattern: one there at start, one made later.
  Connect(container, kNobody);
  Connect(Cgroup(absl::StrCat("machine.slice/ctr", suffix_, "-9c8d.scope")), kNobody);
  Connect(Cgroup(absl::StrCat("machine.slice/ctr", suffix_, "-9c8d.service")), kNobody);

  const std::string agent = absl::StrCat("agent-", suffix_);
  const std::string ctr = absl::StrCat("ctr", suffix_);
  EXPECT_THAT(SessionWorkloads(*h, 6),
              UnorderedElementsAreArray({agent, agent, absl::StrCat("billing-", suffix_),
                                         absl::StrCat("etl-", suffix_), ctr, ctr}));
  EXPECT_EQ(echo_.accepted(), 8u) << "six through interlockd, two direct";
  CommandResult status = h->Cli({"status"});
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("unit ", slice, " (no cgroup now)")))
      << "a slice made after start is enrolled by the kernel, not found by interlockd";
}

// Started in a unit's cgroup with the programs at the root, interlockd stays there: no
// cgroup of its own until `interlock run` needs one for its agents. It refuses to start
// when an enrollment would cover its own cgroup.
TEST_F(EnrollTest, InterlockdStaysInTheCgroupItWasStartedIn) {
  const std::string unit = absl::StrCat("interlockd-", suffix_, ".service");
  const std::string own = Cgroup(absl::StrCat("system.slice/", unit));
  {
    auto h = Harness("", own);
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    auto cg = CgroupPathOfPid(h->pid());
    ASSERT_TRUE(cg.ok()) << cg.status();
    EXPECT_EQ(absl::StrCat(mount_, *cg), own);
    struct stat st {};
    const std::string root = absl::StrCat(mount_, "/", h->cgroup_root());
    EXPECT_NE(::stat(root.c_str(), &st), 0) << "interlockd made a cgroup of its own";
    CommandResult r = h->RunAgent("runner", {BinaryPath("interlock-probe"), "connect",
                                             "127.0.0.42", absl::StrCat(echo_.port())});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
    EXPECT_EQ(ProbeField(r.out, "reply"), "ping\\n") << r.out;
    EXPECT_THAT(SessionWorkloads(*h, 1), UnorderedElementsAreArray({std::string("runner")}));
  }
  auto h = Harness(absl::StrCat("units: [", unit, "]\n"), own);
  absl::Status st = h->Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("interlockd itself runs in"));
}

// `interlock enroll` enforces at once, survives a restart of interlockd (kept in the
// state dir), and `interlock unenroll` ends it; both are audited. Enrollments of the
// configuration file cannot be ended that way.
TEST_F(EnrollTest, EnrollAtRuntimeSurvivesARestartAndUnenrollEndsIt) {
  auto h = Harness("enrollments:\n  - {name: svc, cgroup_path: \"{cgroup_root}/agents/svc\"}\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string user = absl::StrCat("uid-", uid_);
  const std::string dir = Cgroup("cron-job");

  CommandResult enrolled = h->Cli({"enroll", absl::StrCat("--user=", uid_), "--default-deny"});
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out << enrolled.err << h->DaemonLog();
  EXPECT_THAT(enrolled.out, HasSubstr(absl::StrCat("enrolled ", user, ": user ", user, " (uid ",
                                                   uid_, "), default-deny")));
  Connect(dir, uid_);
  CommandResult twice = h->Cli({"enroll", absl::StrCat("--user=", uid_)});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_THAT(twice.err, HasSubstr(absl::StrCat("same uid ", uid_)));

  ASSERT_EQ(h->Stop(), 0);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  Connect(dir, uid_);  // still enforced after the restart
  EXPECT_THAT(h->Cli({"status"}).out, HasSubstr(absl::StrCat("user ", user, " (uid ", uid_, ")")));

  CommandResult config_one = h->Cli({"unenroll", "svc"});
  EXPECT_EQ(config_one.exit_code, 1);
  EXPECT_THAT(config_one.err, HasSubstr("is enrolled by the configuration file"));
  CommandResult gone = h->Cli({"unenroll", user});
  ASSERT_EQ(gone.exit_code, 0) << gone.err;
  Connect(dir, uid_);  // straight to the service now

  EXPECT_THAT(SessionWorkloads(*h, 2), UnorderedElementsAreArray({user, user}));
  EXPECT_EQ(echo_.accepted(), 3u) << "two through interlockd, the last one direct";
  std::vector<std::string> changes;
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_ENROLLMENT)) {
    if (e.identity().workload() == user) changes.push_back(e.outcome());
  }
  EXPECT_EQ(changes, (std::vector<std::string>{"enrolled", "unenrolled"}));
}

// SIGHUP / `interlock reload` re-reads the configuration: a new enrollment applies at
// once and other changed settings are named as waiting for a restart; an invalid file
// is refused with its line and the enrollments in force stay.
TEST_F(EnrollTest, ReloadAppliesEnrollmentsAndRefusesAnInvalidFile) {
  auto h = Harness("");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string dir = Cgroup("anywhere");
  auto text = ReadFile(h->config_path());
  ASSERT_TRUE(text.ok());
  // A setting a reload cannot apply (max_sessions sizes the recordings' descriptor cache).
  const std::string base = absl::StrCat(*text, "max_sessions: 999\n");
  ASSERT_TRUE(WriteFileAtomic(h->config_path(), absl::StrCat(base, "users: [\"", uid_, "\"]\n"), 0644).ok());
  CommandResult reloaded = h->Cli({"reload"});
  ASSERT_EQ(reloaded.exit_code, 0) << reloaded.err << h->DaemonLog();
  EXPECT_THAT(reloaded.out, HasSubstr("1 enrollments in force"));
  EXPECT_THAT(reloaded.out, HasSubstr("applied at the next start of interlockd: max_sessions"));
  Connect(dir, uid_);

  // The CLI reads the file first and names the problem; SIGHUP has interlockd read it.
  // The valid file comes back whatever happens: the harness's teardown reads it.
  const std::string valid = *ReadFile(h->config_path());
  absl::Cleanup restore = [&] { (void)WriteFileAtomic(h->config_path(), valid, 0644); };
  ASSERT_TRUE(WriteFileAtomic(h->config_path(), absl::StrCat(base, "users: [root]\n"), 0644).ok());
  CommandResult refused = h->Cli({"reload"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("users[0]: \"root\" is root's user"));
  ASSERT_EQ(::kill(h->pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor([&] {
    for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
      if (e.outcome() == "config_reload_rejected") {
        EXPECT_THAT(e.detail(), HasSubstr("users[0]: \"root\" is root's user"));
        return true;
      }
    }
    return false;
  })) << h->DaemonLog();
  std::move(restore).Invoke();
  Connect(dir, uid_);  // the enrollment in force stayed

  EXPECT_THAT(SessionWorkloads(*h, 2), UnorderedElementsAreArray({absl::StrCat("uid-", uid_),
                                                                  absl::StrCat("uid-", uid_)}));
  std::vector<std::string> outcomes;
  for (const auto& e : OfKind(h->AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
    if (absl::StartsWith(e.outcome(), "config_")) outcomes.push_back(e.outcome());
  }
  EXPECT_EQ(outcomes, (std::vector<std::string>{"config_reloaded", "config_reload_rejected"}));
}

}  // namespace
}  // namespace interlock::testing
