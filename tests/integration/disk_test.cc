// A full disk never lets a session run unrecorded: the state dir is a small tmpfs that the
// test fills. Below recordings.min_free_mib new sessions are refused (audited, with the
// agent told in its own protocol); a live session whose recording hits ENOSPC ends, and
// its file never verifies as valid. Real kernel redirect, real interlockd, real clients
// (interlock-probe over TCP, psql against a real PostgreSQL).
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "interlock/v1/control.pb.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return 0;
  return uint64_t{v.f_bavail} * v.f_frsize;
}

// Writes `path` until the file system has at most `leave` bytes free (0: until ENOSPC).
void FillUntil(const std::string& path, uint64_t leave) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  const std::string chunk(64 * 1024, 'f');
  const std::string dir = path.substr(0, path.rfind('/'));
  while (FreeBytes(dir) > leave) {
    const uint64_t room = FreeBytes(dir) - leave;
    ssize_t n = ::write(fd, chunk.data(), std::min<uint64_t>(chunk.size(), room));
    if (n <= 0) break;  // ENOSPC
  }
  ::close(fd);
}

// A PostgreSQL resource at `pg` (plain TCP, unverified) whose login is app with the
// password in `dir`/pw.
ResourceSpec PgResource(const PostgresServer& pg, const std::string& dir) {
  return {"appdb", pg.address(), pg.port(),
          absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n"
                       "      login: {user: app, database: appdb, password_ref: \"file:",
                       dir, "/pw\"}\n      sslmode: disable\n      allow_unverified_upstream: true\n")};
}

// The one session of `h` ended because its recording could not be written (ENOSPC): its
// file is unsealed, and verifies as incomplete, never valid. Its session-end event (an
// empty one when there is none).
v1::AuditEvent ExpectEndedUnrecordable(InterlockdHarness& h) {
  EXPECT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }))
      << h.DaemonLog();
  auto ends = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END);
  EXPECT_EQ(ends.size(), 1u);
  if (ends.empty()) return v1::AuditEvent();
  EXPECT_EQ(ends[0].outcome(), "recording_failed");
  EXPECT_THAT(ends[0].detail(), HasSubstr("No space left on device"));
  EXPECT_FALSE(ends[0].recording().sealed());
  CommandResult verify = h.Cli({"verify", ends[0].session_id()});
  EXPECT_EQ(verify.exit_code, 3) << verify.out << verify.err;  // incomplete
  EXPECT_THAT(verify.out + verify.err, Not(HasSubstr("valid:"))) << verify.out;
  EXPECT_THAT(verify.out + verify.err, HasSubstr("incomplete"));
  return ends[0];
}

// `resource` on an 8 MiB state dir whose recordings may take it all (a floor of 1 MiB), the
// audit file elsewhere so that every line of the test is kept: a session's own recording
// fills the disk.
HarnessOptions OnATinyDisk(ResourceSpec resource) {
  return {.resources = {std::move(resource)},
          .extra_yaml = "recordings:\n  min_free_mib: 1\n",
          .state_tmpfs_mib = 8,
          .audit_outside_state_dir = true};
}

std::vector<v1::AuditEvent> Refusals(const InterlockdHarness& h, const std::string& reason) {
  std::vector<v1::AuditEvent> out;
  for (const v1::AuditEvent& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_REJECTED)) {
    if (e.reason() == reason) out.push_back(e);
  }
  return out;
}

class DiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    ASSERT_TRUE(echo_.Start("127.0.0.42", 0).ok());
  }
  std::string Probe() { return BinaryPath("interlock-probe"); }
  std::string EchoPort() { return absl::StrCat(echo_.port()); }

  tools::EchoServer echo_;
};

TEST_F(DiskTest, BelowTheFreeSpaceFloorNewTcpSessionsAreRefusedAndAudited) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}},
                       .extra_yaml = "recordings:\n  min_free_mib: 8\n",
                       .state_tmpfs_mib = 24});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult ok = h.RunAgent("agent", {Probe(), "connect", "127.0.0.42", EchoPort()});
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err << h.DaemonLog();

  // Something else fills the disk to 4 MiB free: below the floor, above zero.
  const std::string filler = absl::StrCat(h.state_dir(), "/filler");
  FillUntil(filler, uint64_t{4} << 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the free-space reading's ttl
  CommandResult refused = h.RunAgent("agent", {Probe(), "connect", "127.0.0.42", EchoPort()});
  // Closed (or reset) without a reply.
  EXPECT_EQ(ProbeField(refused.out, "reply"), "") << refused.out;
  EXPECT_EQ(echo_.accepted(), 1u) << "the refused session never reached the upstream";

  // Audited in the audit file on the same disk: the floor kept room for it.
  ASSERT_TRUE(WaitFor([&] { return !Refusals(h, "disk_full").empty(); })) << h.DaemonLog();
  v1::AuditEvent ev = Refusals(h, "disk_full")[0];
  EXPECT_EQ(ev.outcome(), "denied");
  EXPECT_EQ(ev.identity().workload(), "agent");
  EXPECT_THAT(ev.detail(), HasSubstr("below recordings.min_free_mib 8 MiB"));
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START).size(), 1u);

  v1::StatusResponse s = h.Status();
  EXPECT_GE(s.recordings().refused_disk_full(), 1u);
  EXPECT_LT(s.recordings().free_bytes(), uint64_t{8} << 20);
  EXPECT_EQ(s.recordings().min_free_bytes(), uint64_t{8} << 20);
  EXPECT_EQ(s.recordings().files(), 1u);
  CommandResult human = h.Cli({"status"});
  EXPECT_THAT(human.out, HasSubstr("(floor 8 MiB)")) << human.out;
  EXPECT_THAT(human.out, HasSubstr("1 sessions refused for disk")) << human.out;

  // Room again: sessions start again.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CommandResult again = h.RunAgent("agent", {Probe(), "connect", "127.0.0.42", EchoPort()});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err << h.DaemonLog();
  EXPECT_EQ(ProbeField(again.out, "reply"), "ping\\n");
}

TEST_F(DiskTest, BelowTheFreeSpaceFloorPsqlIsToldTheDiskIsFull) {
  PostgresServer pg({.address = "127.0.0.43"});
  ASSERT_TRUE(pg.Start().ok()) << pg.Log();
  const std::string dir = MakeTempDir("interlock-disktest-");
  ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/pw"), "unused", 0600).ok());
  InterlockdHarness h({.resources = {PgResource(pg, dir)},
                       .extra_yaml = "recordings:\n  min_free_mib: 8\n",
                       .state_tmpfs_mib = 16});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  FillUntil(absl::StrCat(h.state_dir(), "/filler"), uint64_t{4} << 20);
  // psql as an agent runs it: sslmode prefer (an SSLRequest first, which interlockd
  // declines so that libpq shows the ErrorResponse after it), and disable.
  for (const char* mode : {"prefer", "disable"}) {
    CommandResult r = h.RunAgent(
        "agent", {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10", absl::StrCat("PGSSLMODE=", mode),
                  "/usr/bin/psql", "-X", "-h", pg.address(), "-p", absl::StrCat(pg.port()), "-U", "agent", "-d",
                  "whatever", "-Atc", "SELECT 1"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    // The ErrorResponse psql prints: SQLSTATE 53100 disk_full, in words.
    EXPECT_THAT(r.err, HasSubstr("interlock: disk full")) << mode << ": " << r.err << h.DaemonLog();
  }
  ASSERT_TRUE(WaitFor([&] { return !Refusals(h, "disk_full").empty(); })) << h.DaemonLog();
  EXPECT_TRUE(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START).empty());
  RemoveTree(dir);
}

TEST_F(DiskTest, BelowTheFreeSpaceFloorCurlGetsA503) {
  // An HTTP resource; the refusal comes before any upstream connect (the echo is never dialled).
  InterlockdHarness h({.resources = {{"web", "127.0.0.42", echo_.port(), "    protocol: PROTOCOL_HTTP\n"}},
                       .extra_yaml = "recordings:\n  min_free_mib: 8\n",
                       .state_tmpfs_mib = 16});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  FillUntil(absl::StrCat(h.state_dir(), "/filler"), uint64_t{4} << 20);
  CommandResult r = h.RunAgent("agent", {"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                                         absl::StrCat("http://127.0.0.42:", echo_.port(), "/orders")});
  EXPECT_THAT(r.out, HasSubstr("\n503")) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no disk space to record this session")) << r.out;
  ASSERT_TRUE(WaitFor([&] { return !Refusals(h, "disk_full").empty(); })) << h.DaemonLog();
  EXPECT_EQ(echo_.accepted(), 0u);
}

TEST_F(DiskTest, LiveSessionHittingEnospcEndsCleanlyAndItsRecordingNeverVerifiesValid) {
  InterlockdHarness h(OnATinyDisk({"echo", "127.0.0.42", echo_.port()}));
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // One agent, two sessions: a 64 MiB echo that cannot be recorded on 8 MiB, then (the disk
  // still full) a new connect. One `interlock run`: enrolling another agent would need room
  // in the state dir too.
  CommandResult r = h.RunAgent(
      "agent", {"/bin/sh", "-c",
                "\"$0\" transfer 127.0.0.42 $1 67108864; echo \"transfer=$?\"; "
                "\"$0\" connect 127.0.0.42 $1; echo \"connect=$?\"",
                Probe(), EchoPort()});
  ASSERT_THAT(r.out, HasSubstr("connect=")) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("transfer=0"))) << "64 MiB each way cannot be recorded on 8 MiB: " << r.out;
  // The disk is still full: the connect is closed (or reset) without a reply.
  EXPECT_THAT(r.out, Not(HasSubstr("ping\\n"))) << r.out;

  const v1::AuditEvent end = ExpectEndedUnrecordable(h);
  // Less was relayed than the agent sent: the session stopped when recording did.
  EXPECT_LT(end.bytes_to_upstream(), uint64_t{64} << 20);
  // The audit trail agrees: an unsealed recording, present, is not tampered.
  CommandResult audit = h.Cli({"verify", "--audit"});
  EXPECT_NE(audit.exit_code, 4) << audit.out << audit.err;

  // The disk was still full: the second session was refused, audited, never relayed.
  ASSERT_TRUE(WaitFor([&] { return !Refusals(h, "disk_full").empty(); })) << h.DaemonLog() << r.out;
  EXPECT_EQ(OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_START).size(), 1u);
  EXPECT_EQ(echo_.accepted(), 1u);
  // interlockd itself is fine.
  EXPECT_TRUE(h.running());
  EXPECT_EQ(h.Status().active_sessions(), 0u);
}

// A PostgreSQL session that outgrows the disk mid-way: psql, as the agent, runs query
// after query, each answered with 6 KB of random text, more than its recording can hold on
// 8 MiB. The session ends when the recording does, and psql is told why in its protocol (a
// FATAL ErrorResponse, SQLSTATE 53100, between two answers) instead of seeing the
// connection reset.
TEST_F(DiskTest, PsqlWhoseSessionOutgrowsTheDiskIsToldWhyInItsProtocol) {
  PostgresServer pg({.address = "127.0.0.43"});
  ASSERT_TRUE(pg.Start().ok()) << pg.Log();
  ASSERT_TRUE(pg.Psql("CREATE ROLE app LOGIN PASSWORD 'disk-secret'").ok());
  ASSERT_TRUE(pg.Psql("CREATE DATABASE appdb OWNER app").ok());
  const std::string dir = MakeTempDir("interlock-disktest-");
  absl::Cleanup remove_dir = [&] { RemoveTree(dir); };
  ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/pw"), "disk-secret", 0600).ok());
  InterlockdHarness h(OnATinyDisk(PgResource(pg, dir)));
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent(
      "agent", {"/bin/sh", "-c",
                "yes \"SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200);\" | head -n 6000 | "
                "PGSSLMODE=disable PGCONNECT_TIMEOUT=10 /usr/bin/psql -X -q -v VERBOSITY=verbose -v ON_ERROR_STOP=1 "
                "-o /dev/null -h \"$0\" -p \"$1\" -U agent -d whatever; echo \"psql=$?\"",
                pg.address(), absl::StrCat(pg.port())});
  EXPECT_THAT(r.out, Not(HasSubstr("psql=0"))) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("FATAL:  53100: interlock: terminating connection because its recording cannot be "
                               "written (disk full); nothing more is relayed"))
      << r.err << h.DaemonLog();

  ExpectEndedUnrecordable(h);
  EXPECT_TRUE(h.running());
}

TEST_F(DiskTest, RetentionDeletesTheOldestFinishedRecordingsAuditedAndVerifyAccountsForThem) {
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}},
                       .extra_yaml = "recordings:\n  retain_mib: 1\n"});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  // A 1 MiB echo (2 MiB recorded), then a small one: together past retain_mib.
  CommandResult big = h.RunAgent("agent", {Probe(), "transfer", "127.0.0.42", EchoPort(), "1048576"});
  ASSERT_EQ(big.exit_code, 0) << big.out << big.err;
  CommandResult small = h.RunAgent("agent", {Probe(), "connect", "127.0.0.42", EchoPort()});
  ASSERT_EQ(small.exit_code, 0) << small.out << small.err;
  ASSERT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  auto ends = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END);
  const std::string big_id = ends[0].bytes_to_upstream() > ends[1].bytes_to_upstream() ? ends[0].session_id()
                                                                                       : ends[1].session_id();
  const std::string small_id = big_id == ends[0].session_id() ? ends[1].session_id() : ends[0].session_id();
  CommandResult listed = h.Cli({"sessions", "--json"});
  EXPECT_THAT(listed.out, HasSubstr(big_id));

  // Retention runs at start (and once a minute): the restart applies it now.
  ASSERT_EQ(h.Stop(), 0);
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::vector<v1::AuditEvent> deleted;
  ASSERT_TRUE(WaitFor([&] {
    deleted.clear();
    for (const v1::AuditEvent& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
      if (e.outcome() == "recording_deleted") deleted.push_back(e);
    }
    return !deleted.empty();
  })) << h.DaemonLog();
  ASSERT_EQ(deleted.size(), 1u) << "only the oldest goes; the small one fits";
  EXPECT_EQ(deleted[0].session_id(), big_id);
  EXPECT_EQ(deleted[0].reason(), "retention");
  EXPECT_EQ(deleted[0].recording().file(), absl::StrCat(big_id, ".rec"));
  EXPECT_NE(::access(absl::StrCat(h.state_dir(), "/recordings/", big_id, ".rec").c_str(), F_OK), 0);
  EXPECT_EQ(::access(absl::StrCat(h.state_dir(), "/recordings/", small_id, ".rec").c_str(), F_OK), 0);

  // The listing (from the index) drops it; verify --audit accounts for it instead of
  // calling the session's recording removed.
  listed = h.Cli({"sessions", "--json"});
  EXPECT_THAT(listed.out, Not(HasSubstr(big_id)));
  EXPECT_THAT(listed.out, HasSubstr(small_id));
  CommandResult audit = h.Cli({"verify", "--audit"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  EXPECT_THAT(audit.out, HasSubstr("1 deleted by retention"));
  EXPECT_EQ(h.Status().recordings().deleted(), 1u);
}

}  // namespace
}  // namespace interlock::testing
