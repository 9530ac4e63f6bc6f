// The tamper-evident audit log end to end: real PostgreSQL sessions through a real
// interlockd (eBPF redirect) with a tiny audit rotation size, `interlock verify --audit`
// over the rotated files, then the edits an attacker with write access would make —
// each must fail verification and name the line. And a recording cut short after a clean
// close must verify as tampered, not incomplete.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/audit/chain.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kAppPassword[] = "audit-chain-only-interlockd-knows";

class AuditChainIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-auditchain-");
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.47"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE app LOGIN PASSWORD '", kAppPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE appdb OWNER app").ok());
    ASSERT_TRUE(pg_->Psql("CREATE TABLE accounts(id int primary key, balance numeric);"
                          "INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 100) g;"
                          "ALTER TABLE accounts OWNER TO app",
                          "appdb")
                    .ok());
    password_file_ = absl::StrCat(dir_, "/app.pw");
    ASSERT_TRUE(WriteFileAtomic(password_file_, kAppPassword, 0600).ok());
  }
  void TearDown() override {
    pg_.reset();
    if (!dir_.empty()) RemoveTree(dir_);
  }

  ResourceSpec PgResource() {
    return {"appdb", pg_->address(), pg_->port(),
            absl::StrCat("    protocol: PROTOCOL_POSTGRES\n", "    postgres:\n",
                         "      login: {user: app, database: appdb, password_ref: \"file:", password_file_,
                         "\"}\n", "      sslmode: disable\n", "      allow_unverified_upstream: true\n")};
  }
  std::vector<std::string> Psql(const std::string& sql) {
    return {"/usr/bin/env", "-u", "PGPASSWORD", "PGCONNECT_TIMEOUT=10", "/usr/bin/psql", "-X", "-h",
            pg_->address(), "-p", absl::StrCat(pg_->port()), "-U", "agent", "-d", "whatever", "-v",
            "ON_ERROR_STOP=1", "-Atc", sql};
  }
  // The audit files of `h`, in chain order (rotated by seq, then the live file).
  static std::vector<std::string> AuditFiles(const InterlockdHarness& h) {
    std::vector<std::string> out;
    const std::string dir = absl::StrCat(h.state_dir(), "/audit");
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (absl::StartsWith(e->d_name, "audit.jsonl")) out.push_back(absl::StrCat(dir, "/", e->d_name));
      }
      ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return audit::SortAuditFiles(std::move(out));
  }

  std::string dir_;
  std::string password_file_;
  std::unique_ptr<PostgresServer> pg_;
};

TEST_F(AuditChainIntegrationTest, RotatedChainVerifiesAndAnEditIsNamedByLine) {
  InterlockdHarness h({.resources = {PgResource()},
                       .extra_yaml = "audit:\n  file:\n    rotate_bytes: 2048\n"});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  constexpr int kSessions = 4;
  for (int i = 0; i < kSessions; ++i) {
    CommandResult r = h.RunAgent("audit-agent", Psql(absl::StrCat(
                                                    "SELECT count(*) FROM accounts WHERE balance > ", i * 100)));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  }
  ASSERT_TRUE(WaitFor([&] {
    return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == static_cast<size_t>(kSessions);
  })) << h.DaemonLog();
  EXPECT_EQ(h.Stop(), 0) << h.DaemonLog();

  std::vector<std::string> files = AuditFiles(h);
  ASSERT_GE(files.size(), 4u) << "rotated at 2 KiB";
  for (const auto& ev : OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)) {
    EXPECT_TRUE(ev.recording().sealed());
    EXPECT_GT(ev.recording().records(), 2u);
    EXPECT_EQ(ev.recording().head_sha256().size(), 64u);
  }
  // A clean stop ends the chain with a signed checkpoint ("shutdown", or "rotate" when the
  // stop's own event filled the file: then the new live file is empty).
  auto events = h.AuditEvents();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), v1::AUDIT_KIND_AUDIT_CHECKPOINT);
  EXPECT_THAT(events.back().checkpoint().reason(), ::testing::AnyOf("shutdown", "rotate"));

  CommandResult v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("audit: valid"));
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat("recordings: ", kSessions, " checked")));
  // The files named explicitly, in any order: sorted by seq.
  std::vector<std::string> args = {"verify", "--audit"};
  args.insert(args.end(), files.rbegin(), files.rend());
  v = h.Cli(args);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  // An edit inside line 2 of the second file: named as that line.
  const std::string victim = files[1];
  const std::string original = *ReadFile(victim);
  std::vector<std::string> lines = absl::StrSplit(original, '\n');
  ASSERT_GE(lines.size(), 3u);
  size_t at = lines[1].find("\"time\":\"20");
  ASSERT_NE(at, std::string::npos) << lines[1];
  lines[1][at + 9] = lines[1][at + 9] == '1' ? '2' : '1';  // a digit of the year
  ASSERT_TRUE(WriteFileAtomic(victim, absl::StrJoin(lines, "\n"), 0600).ok());
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat("tampered: ", victim, ":2:")));
  ASSERT_TRUE(WriteFileAtomic(victim, original, 0600).ok());
  EXPECT_EQ(h.Cli({"verify", "--audit"}).exit_code, 0);

  // Two lines swapped.
  lines = absl::StrSplit(original, '\n');
  std::swap(lines[0], lines[1]);
  ASSERT_TRUE(WriteFileAtomic(victim, absl::StrJoin(lines, "\n"), 0600).ok());
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat(victim, ":1:")));
  ASSERT_TRUE(WriteFileAtomic(victim, original, 0600).ok());

  // A rotated file removed from the middle: the next file's first line says what is missing.
  ASSERT_EQ(::rename(victim.c_str(), (dir_ + "/removed").c_str()), 0);
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat(files[2], ":1: seq ")));
  EXPECT_THAT(v.out, HasSubstr("missing"));
  ASSERT_EQ(::rename((dir_ + "/removed").c_str(), victim.c_str()), 0);

  // The newest file cut inside its last line: incomplete (3), not valid, not tampered.
  // (Given explicitly: as the last file, its cut line is the end of the chain.)
  std::string live = files.back();
  if (ReadFile(live)->empty()) live = files[files.size() - 2];
  const std::string live_bytes = *ReadFile(live);
  ASSERT_EQ(::truncate(live.c_str(), static_cast<off_t>(live_bytes.size() - 5)), 0);
  args = {"verify", "--audit"};
  args.insert(args.end(), files.begin(), files.end());
  if (live != files.back()) args.pop_back();
  v = h.Cli(args);
  EXPECT_EQ(v.exit_code, 3) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("partial last line"));
  ASSERT_TRUE(WriteFileAtomic(live, live_bytes, 0600).ok());

  // The chain goes on across a restart.
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("audit-agent", Psql("SELECT 1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  ASSERT_TRUE(WaitFor([&] {
    return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == static_cast<size_t>(kSessions + 1);
  })) << h.DaemonLog();
  EXPECT_EQ(h.Stop(), 0);
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// interlockd killed (no shutdown checkpoint, buffered lines lost): the file holds whole
// lines only, so the chain still verifies, its tail unsigned; after a restart it goes on.
TEST_F(AuditChainIntegrationTest, ChainGoesOnAfterACrash) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("audit-agent", Psql("SELECT 1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  h.Kill();
  CommandResult v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, ::testing::AnyOf(HasSubstr("nothing is signed"), HasSubstr("not yet signed")));

  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  r = h.RunAgent("audit-agent", Psql("SELECT 2"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() == 2; }));
  EXPECT_EQ(h.Stop(), 0) << h.DaemonLog();
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("audit: valid"));
  EXPECT_THAT(v.out, HasSubstr("recordings: 2 checked"));
  EXPECT_THAT(v.out, ::testing::Not(HasSubstr("not yet signed")));
}

TEST_F(AuditChainIntegrationTest, RecordingTruncatedAfterACleanCloseIsTampered) {
  InterlockdHarness h({.resources = {PgResource()}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = h.RunAgent("audit-agent", Psql("SELECT count(*) FROM accounts"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  ASSERT_TRUE(WaitFor([&] { return !OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).empty(); }));
  EXPECT_EQ(h.Stop(), 0) << h.DaemonLog();
  const v1::AuditEvent end = OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END)[0];
  const std::string id = end.session_id();
  ASSERT_TRUE(end.recording().sealed());
  const std::string rec = absl::StrCat(h.state_dir(), "/recordings/", end.recording().file());
  ASSERT_EQ(end.recording().file(), id + ".rec");

  CommandResult v = h.Cli({"verify", id});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("matches the session-end event"));

  // Cut after the clean close (the seal and a bit more): without the audit log it would
  // pass for a crash...
  const std::string bytes = *ReadFile(rec);
  ASSERT_EQ(::truncate(rec.c_str(), static_cast<off_t>(bytes.size() - 120)), 0);
  const std::string empty_log = dir_ + "/empty.jsonl";
  ASSERT_TRUE(WriteFileAtomic(empty_log, "", 0600).ok());
  v = h.Cli({"verify", id, "--audit-file", empty_log});
  EXPECT_EQ(v.exit_code, 3) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("incomplete"));
  // ... but the session-end event says how long it was.
  v = h.Cli({"verify", id});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("tampered"));
  EXPECT_THAT(v.out, HasSubstr("after the clean close"));
  v = h.Cli({"verify", "--audit"});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat("session ", id, ": tampered")));

  // Removed altogether: tampered, not "no such session".
  ASSERT_EQ(::unlink(rec.c_str()), 0);
  v = h.Cli({"verify", id});
  EXPECT_EQ(v.exit_code, 4) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("missing"));
}

}  // namespace
}  // namespace interlock::testing
