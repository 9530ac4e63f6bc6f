// Audit sinks end to end: a real interlockd sends its audit events to a real rsyslogd
// (Debian's, started here with its own config: imudp, imtcp, imtcp + TLS through the gtls
// netstream driver, a test CA) and to a Splunk-HEC-compatible receiver
// (tests/integration/hec_receiver.py, HTTPS with a test CA) that goes down and comes back.
// Everything a test starts is stopped by pid in destructors, also when an ASSERT fails.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "interlock/v1/control.pb.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/probe_output.h"
#include "tests/testing/test_ca.h"
#include "tests/testing/wait.h"
#include "tools/echo/echo_server.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kBom[] = "\xEF\xBB\xBF";

// A background process stopped (SIGTERM, then SIGKILL) by pid when this goes away.
class ScopedProcess {
 public:
  ScopedProcess() = default;
  explicit ScopedProcess(pid_t pid) : pid_(pid) {}
  ScopedProcess(ScopedProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  ScopedProcess& operator=(ScopedProcess&& o) noexcept {
    Stop();
    pid_ = std::exchange(o.pid_, -1);
    return *this;
  }
  ~ScopedProcess() { Stop(); }
  void Stop() {
    if (pid_ > 0) StopProcess(pid_, 5);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

bool TcpPortOpen(uint16_t port) { return DialLoopback(port).valid(); }

std::string ReadOr(const std::string& path) {
  auto t = ReadFile(path);
  return t.ok() ? *t : "";
}

const v1::AuditSinkStatus* SinkStatus(const v1::StatusResponse& s, const std::string& name) {
  for (const auto& a : s.audit_sinks()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// The local file's events by id, without the chain fields (chain.h): those are the file's
// own, and a sink's copy of the event has none.
std::map<std::string, v1::AuditEvent> ById(const std::vector<v1::AuditEvent>& events) {
  std::map<std::string, v1::AuditEvent> out;
  for (const auto& e : events) {
    v1::AuditEvent& c = out[e.id()] = e;
    c.clear_seq();
    c.clear_prev_sha256();
  }
  return out;
}

// rsyslogd with three inputs: UDP, TCP (octet counting is auto-detected) and TLS (gtls, the
// server cert from a test CA). Every message goes to one file as
// "<input>\t<msgid>\t<structured-data>\t<msg>".
class Rsyslog {
 public:
  absl::Status Start(const std::string& dir, const IssuedCert& cert, const std::string& ca_file) {
    dir_ = dir;
    udp_ = FreePort();
    tcp_ = FreePort();
    tls_ = FreePort();
    out_ = dir + "/received.log";
    const std::string conf =
        absl::StrCat(R"(global(workDirectory=")", dir, R"(" maxMessageSize="64k"
  DefaultNetstreamDriverCAFile=")",
                     ca_file, R"("
  DefaultNetstreamDriverCertFile=")",
                     cert.cert_file, R"("
  DefaultNetstreamDriverKeyFile=")",
                     cert.key_file, R"(")
module(load="imudp")
module(load="imtcp" maxSessions="100")
input(type="imudp" address="127.0.0.1" port=")",
                     udp_, R"(" name="udp")
input(type="imtcp" address="127.0.0.1" port=")",
                     tcp_, R"(" name="tcp")
input(type="imtcp" address="127.0.0.1" port=")",
                     tls_, R"(" name="tls" streamDriver.name="gtls"
      streamDriver.mode="1" streamDriver.authMode="anon")
template(name="fields" type="list") {
  property(name="inputname") constant(value="\t")
  property(name="msgid") constant(value="\t")
  property(name="structured-data") constant(value="\t")
  property(name="msg") constant(value="\n")
}
action(type="omfile" file=")",
                     out_, R"(" template="fields")
)");
    INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(dir + "/rsyslog.conf", conf, 0600));
    proc_ = ScopedProcess(
        Spawn({"/usr/sbin/rsyslogd", "-n", "-f", dir + "/rsyslog.conf", "-i", dir + "/rsyslog.pid"},
              dir + "/rsyslogd.log"));
    if (!WaitFor([&] { return TcpPortOpen(tcp_) && TcpPortOpen(tls_); }, 15)) {
      return absl::UnavailableError(
          absl::StrCat("rsyslogd did not start: ", ReadOr(dir + "/rsyslogd.log")));
    }
    return absl::OkStatus();
  }

  struct Line {
    std::string input, msgid, sd, msg;
  };
  std::vector<Line> Lines() const {
    std::vector<Line> out;
    for (absl::string_view l : absl::StrSplit(ReadOr(out_), '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(l, absl::MaxSplits('\t', 3));
      if (f.size() == 4) out.push_back({f[0], f[1], f[2], f[3]});
    }
    return out;
  }
  std::string Log() const { return ReadOr(dir_ + "/rsyslogd.log"); }

  uint16_t udp_ = 0, tcp_ = 0, tls_ = 0;

 private:
  std::string dir_, out_;
  ScopedProcess proc_;
};

// Parses the JSON event in a syslog MSG (BOM first).
absl::StatusOr<v1::AuditEvent> EventOfMsg(const std::string& msg) {
  if (!absl::StartsWith(msg, kBom)) return absl::InvalidArgumentError("no BOM");
  v1::AuditEvent e;
  auto st = google::protobuf::util::JsonStringToMessage(msg.substr(3), &e);
  if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
  return e;
}

class AuditSinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("audit-sinks-it-");
    ASSERT_TRUE(echo_.Start("127.0.0.42", 0).ok());
    auto ca = TestCa::Create(dir_, "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    auto leaf = ca_->Issue("server", {.dns_names = {"localhost"}, .ips = {"127.0.0.1"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    server_ = *leaf;
  }
  void TearDown() override {
    echo_.Stop();
    if (!dir_.empty()) RemoveTree(dir_);
  }
  CommandResult Session(InterlockdHarness& h) {
    return h.RunAgent("agent", {BinaryPath("interlock-probe"), "connect", "127.0.0.42",
                                absl::StrCat(echo_.port())});
  }

  std::string dir_;
  tools::EchoServer echo_;
  std::unique_ptr<TestCa> ca_;
  IssuedCert server_;
};

TEST_F(AuditSinksTest, SyslogOverUdpTcpAndTlsArrivesParseableAndComplete) {
  Rsyslog rs;
  ASSERT_TRUE(rs.Start(dir_, server_, ca_->cert_file()).ok()) << rs.Log();
  const std::string yaml = absl::StrCat(R"(audit:
  sinks:
    - name: udp
      syslog: {address: "127.0.0.1:)",
                                        rs.udp_, R"(", transport: SYSLOG_TRANSPORT_UDP}
    - name: tcp
      syslog: {address: "127.0.0.1:)",
                                        rs.tcp_, R"(", transport: SYSLOG_TRANSPORT_TCP}
    - name: tls
      syslog:
        address: "localhost:)",
                                        rs.tls_, R"("
        transport: SYSLOG_TRANSPORT_TLS
        ca_file: )",
                                        ca_->cert_file(), R"(
    - name: tls-wrong-name
      retry_initial_ms: 50
      retry_max_ms: 200
      syslog:
        address: "127.0.0.1:)",
                                        rs.tls_, R"("
        transport: SYSLOG_TRANSPORT_TLS
        ca_file: )",
                                        ca_->cert_file(), R"(
        server_name: siem.other.example
)");
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .extra_yaml = yaml});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = Session(h);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();

  std::map<std::string, v1::AuditEvent> local;
  auto complete = [&](const std::string& input) {
    local = ById(h.AuditEvents());
    std::set<std::string> got;
    for (const auto& l : rs.Lines()) {
      if (l.input != input) continue;
      auto e = EventOfMsg(l.msg);
      if (e.ok()) got.insert(e->id());
    }
    for (const auto& [id, e] : local) {
      if (!got.count(id)) return false;
    }
    return local.size() >= 4;  // started, enrollment, session start and end at least
  };
  for (const char* input : {"udp", "tcp", "tls"}) {
    EXPECT_TRUE(WaitFor([&] { return complete(input); }, 20)) << input << "\n"
                                                              << rs.Log() << h.DaemonLog();
  }
  // Every message: MSGID = the kind, our SD element naming the same id, MSG = the same
  // event as the local file, byte for byte through the JSON mapping.
  int checked = 0;
  for (const auto& l : rs.Lines()) {
    auto e = EventOfMsg(l.msg);
    ASSERT_TRUE(e.ok()) << l.input << ": " << e.status() << " in " << l.msg;
    auto it = local.find(e->id());
    if (it == local.end()) continue;  // emitted after the snapshot
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*e, it->second)) << l.msg;
    EXPECT_EQ(l.msgid,
              std::string(absl::StripPrefix(v1::AuditKind_Name(e->kind()), "AUDIT_KIND_")));
    EXPECT_THAT(l.sd, HasSubstr(absl::StrCat("[interlock@32473 id=\"", e->id(), "\"")));
    ++checked;
  }
  EXPECT_GE(checked, 12);
  // A receiver whose certificate does not carry the configured name gets nothing.
  v1::StatusResponse s = h.Status();
  const v1::AuditSinkStatus* wrong = SinkStatus(s, "tls-wrong-name");
  ASSERT_NE(wrong, nullptr);
  EXPECT_EQ(wrong->sent_events(), 0u);
  EXPECT_THAT(wrong->last_error(), HasSubstr("certificate"));
  EXPECT_GT(wrong->spooled_events() + wrong->queued_events(), 0u);
  for (const char* name : {"udp", "tcp", "tls"}) {
    ASSERT_NE(SinkStatus(s, name), nullptr);
    EXPECT_GE(SinkStatus(s, name)->sent_events(), 4u) << name;
    EXPECT_EQ(SinkStatus(s, name)->dropped_events(), 0u) << name;
  }
  CommandResult text = h.Cli({"status"});
  EXPECT_THAT(text.out, HasSubstr("audit sinks:"));
  EXPECT_THAT(text.out, HasSubstr("syslog-tls localhost:"));
}

// format: AUDIT_SINK_FORMAT_OCSF — every event of the local file reaches rsyslogd as an
// OCSF object (class and type set, the event id as metadata.uid), under the same RFC 5424
// header and structured data.
TEST_F(AuditSinksTest, OcsfSinkCarriesEveryEventAsOcsf) {
  Rsyslog rs;
  ASSERT_TRUE(rs.Start(dir_, server_, ca_->cert_file()).ok()) << rs.Log();
  const std::string yaml = absl::StrCat(R"(audit:
  sinks:
    - name: ocsf
      format: AUDIT_SINK_FORMAT_OCSF
      syslog: {address: "127.0.0.1:)",
                                        rs.tcp_, R"(", transport: SYSLOG_TRANSPORT_TCP}
)");
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .extra_yaml = yaml});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  CommandResult r = Session(h);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h.DaemonLog();
  std::map<std::string, google::protobuf::Struct> got;  // by metadata.uid
  auto complete = [&] {
    got.clear();
    for (const auto& l : rs.Lines()) {
      const size_t bom = l.msg.find("\xEF\xBB\xBF");
      google::protobuf::Struct o;
      if (bom == std::string::npos || !google::protobuf::util::JsonStringToMessage(l.msg.substr(bom + 3), &o).ok()) {
        continue;
      }
      got[o.fields().at("metadata").struct_value().fields().at("uid").string_value()] = o;
    }
    auto local = h.AuditEvents();
    for (const v1::AuditEvent& e : local) {
      if (!got.count(e.id())) return false;
    }
    return local.size() >= 4;
  };
  ASSERT_TRUE(WaitFor(complete, 20)) << rs.Log() << h.DaemonLog();
  for (const v1::AuditEvent& e : h.AuditEvents()) {
    const auto& f = got.at(e.id()).fields();
    const double class_uid = f.at("class_uid").number_value();
    EXPECT_GT(class_uid, 0) << e.id();
    EXPECT_EQ(f.at("type_uid").number_value(), class_uid * 100 + f.at("activity_id").number_value());
    if (e.kind() == v1::AUDIT_KIND_SESSION_START) {
      EXPECT_EQ(class_uid, 4001);  // Network Activity
    }
  }
}

// The HEC receiver, HTTPS with the test CA, restartable on the same port.
class Hec {
 public:
  Hec(std::string dir, IssuedCert cert, std::string token)
      : dir_(std::move(dir)), cert_(std::move(cert)), token_(std::move(token)), port_(FreePort()) {}
  absl::Status Start() {
    proc_ = ScopedProcess(
        Spawn({"/usr/bin/python3", INTERLOCK_SOURCE_DIR "/tests/integration/hec_receiver.py",
               "--port", absl::StrCat(port_), "--token", token_, "--out", out(), "--cert",
               cert_.cert_file, "--key", cert_.key_file, "--answer-file", answer_file()},
              dir_ + "/hec.log"));
    if (!WaitFor([&] { return TcpPortOpen(port_); }, 15)) return absl::UnavailableError(Log());
    return absl::OkStatus();
  }
  void Stop() { proc_.Stop(); }
  std::string out() const { return dir_ + "/hec-received.jsonl"; }
  std::string answer_file() const { return dir_ + "/hec-answer"; }
  std::string Log() const { return ReadOr(dir_ + "/hec.log"); }
  uint16_t port() const { return port_; }
  // Every event received, in order (duplicates included).
  std::vector<v1::AuditEvent> Events() const {
    std::vector<v1::AuditEvent> out;
    for (absl::string_view l : absl::StrSplit(ReadOr(this->out()), '\n', absl::SkipEmpty())) {
      google::protobuf::Struct s;
      if (!google::protobuf::util::JsonStringToMessage(std::string(l), &s).ok()) continue;
      std::string ev_json;
      (void)google::protobuf::util::MessageToJsonString(s.fields().at("event"), &ev_json);
      v1::AuditEvent e;
      google::protobuf::util::JsonParseOptions o;
      if (google::protobuf::util::JsonStringToMessage(ev_json, &e, o).ok()) out.push_back(e);
    }
    return out;
  }

 private:
  std::string dir_;
  IssuedCert cert_;
  std::string token_;
  uint16_t port_;
  ScopedProcess proc_;
};

TEST_F(AuditSinksTest, HecOutageLosesNothingAndDuplicatesKeepTheirId) {
  const std::string token = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hec-token", token + "\n", 0600).ok());
  Hec hec(dir_, server_, token);
  ASSERT_TRUE(hec.Start().ok()) << hec.Log();
  const std::string yaml = absl::StrCat(R"(audit:
  sinks:
    - name: splunk
      retry_initial_ms: 50
      retry_max_ms: 500
      hec:
        url: "https://localhost:)",
                                        hec.port(), R"(/services/collector/event"
        token_ref: "file:)",
                                        dir_, R"(/hec-token"
        ca_file: )",
                                        ca_->cert_file(), R"(
        index: security
        batch_max_delay_ms: 50
        timeout_ms: 2000
)");
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .extra_yaml = yaml});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  auto all_received = [&] {
    std::set<std::string> got;
    for (const auto& e : hec.Events()) got.insert(e.id());
    for (const auto& e : h.AuditEvents()) {
      if (!got.count(e.id())) return false;
    }
    return true;
  };
  ASSERT_EQ(Session(h).exit_code, 0);
  ASSERT_TRUE(WaitFor(all_received, 20)) << hec.Log() << h.DaemonLog();

  // The collector goes away; sessions go on, their events wait in the spool.
  hec.Stop();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Session(h).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        const v1::AuditSinkStatus* s = SinkStatus(h.Status(), "splunk");
        return s != nullptr && s->spooled_events() > 0 && s->retries() > 0;
      },
      20))
      << h.Status().DebugString();
  EXPECT_FALSE(SinkStatus(h.Status(), "splunk")->last_error().empty());

  // It comes back: everything arrives, and what arrives twice is the same event.
  ASSERT_TRUE(hec.Start().ok()) << hec.Log();
  ASSERT_TRUE(WaitFor(all_received, 30)) << hec.Log() << h.Status().DebugString();
  std::map<std::string, v1::AuditEvent> local = ById(h.AuditEvents());
  std::map<std::string, v1::AuditEvent> seen;
  size_t duplicates = 0;
  for (const auto& e : hec.Events()) {
    auto [it, fresh] = seen.emplace(e.id(), e);
    if (!fresh) {
      ++duplicates;
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(it->second, e)) << e.id();
    }
    auto l = local.find(e.id());
    if (l != local.end()) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(l->second, e)) << e.id();
    }
  }
  EXPECT_GE(seen.size(),
            local.size() - 2);  // the status calls above may add none; sessions added plenty
  RecordProperty("hec_duplicates", static_cast<int>(duplicates));
  ASSERT_TRUE(WaitFor([&] { return SinkStatus(h.Status(), "splunk")->spooled_events() == 0; }, 10));
  EXPECT_EQ(SinkStatus(h.Status(), "splunk")->dropped_events(), 0u);

  // A 400-class answer rejects the batch for good: counted, and said in the local file.
  ASSERT_TRUE(WriteFileAtomic(hec.answer_file(), "400", 0600).ok());
  ASSERT_EQ(Session(h).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return SinkStatus(h.Status(), "splunk")->failed_events() > 0; }, 20));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
          if (e.reason() == "audit_sink_rejected" && absl::StrContains(e.detail(), "splunk"))
            return true;
        }
        return false;
      },
      10));
  EXPECT_THAT(SinkStatus(h.Status(), "splunk")->last_error(), HasSubstr("HTTP 400"));
  // The rejected batch is not retried: the spool stays empty.
  EXPECT_EQ(SinkStatus(h.Status(), "splunk")->spooled_events(), 0u);
}

// `interlock reload` adds a sink, changes it while its collector is down (what the old
// one spooled is delivered by the new one), and removes it; no session ends for it.
TEST_F(AuditSinksTest, ReloadAddsChangesAndRemovesASinkAndLosesNothingItHadQueued) {
  const std::string token = "tok-reload";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hec-token", token, 0600).ok());
  Hec hec(dir_, server_, token);
  ASSERT_TRUE(hec.Start().ok()) << hec.Log();
  auto sink_yaml = [&](const std::string& index) {
    return absl::StrCat("audit:\n  sinks:\n    - name: splunk\n      retry_initial_ms: 50\n      retry_max_ms: 300\n",
                        "      hec:\n        url: \"https://localhost:", hec.port(),
                        "/services/collector/event\"\n        token_ref: \"file:", dir_, "/hec-token\"\n",
                        "        ca_file: ", ca_->cert_file(), "\n        index: ", index,
                        "\n        batch_max_delay_ms: 50\n        timeout_ms: 2000\n");
  };
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  const std::string base = ReadOr(h.config_path());
  ASSERT_EQ(Session(h).exit_code, 0);

  // Added: events from the reload on reach the collector.
  ASSERT_TRUE(WriteFileAtomic(h.config_path(), base + sink_yaml("first"), 0644).ok());
  CommandResult added = h.Cli({"reload"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_THAT(added.out, HasSubstr("audit.sinks: splunk"));
  ASSERT_EQ(Session(h).exit_code, 0);
  auto received_since_added = [&] {
    std::set<std::string> got;
    for (const auto& e : hec.Events()) got.insert(e.id());
    bool on = false;
    for (const auto& e : h.AuditEvents()) {
      on |= e.outcome() == "config_reloaded";
      if (on && !got.count(e.id())) return false;
    }
    return on;
  };
  ASSERT_TRUE(WaitFor(received_since_added, 20)) << hec.Log() << h.DaemonLog();

  // Changed while the collector is down: the old sink's backlog goes to its spool, the
  // new one takes the spool over and delivers it when the collector is back.
  hec.Stop();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Session(h).exit_code, 0);
  ASSERT_TRUE(WriteFileAtomic(h.config_path(), base + sink_yaml("second"), 0644).ok());
  CommandResult changed = h.Cli({"reload"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_THAT(changed.out, HasSubstr("audit.sinks: splunk"));
  ASSERT_EQ(Session(h).exit_code, 0);
  ASSERT_TRUE(hec.Start().ok()) << hec.Log();
  ASSERT_TRUE(WaitFor(received_since_added, 30)) << hec.Log() << h.Status().DebugString();

  // Removed: gone from status; sessions carry on.
  ASSERT_TRUE(WriteFileAtomic(h.config_path(), base, 0644).ok());
  CommandResult removed = h.Cli({"reload"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(SinkStatus(h.Status(), "splunk"), nullptr);
  ASSERT_EQ(Session(h).exit_code, 0);
}

TEST_F(AuditSinksTest, HecRestartOfInterlockdResendsTheSpool) {
  const std::string token = "tok-restart";
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hec-token", token, 0600).ok());
  Hec hec(dir_, server_, token);
  const std::string yaml = absl::StrCat(R"(audit:
  sinks:
    - name: splunk
      retry_initial_ms: 50
      retry_max_ms: 300
      hec:
        url: "https://127.0.0.1:)",
                                        hec.port(), R"(/services/collector/event"
        token_ref: "file:)",
                                        dir_, R"(/hec-token"
        ca_file: )",
                                        ca_->cert_file(), R"(
        batch_max_delay_ms: 20
)");
  InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .extra_yaml = yaml});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Session(h).exit_code, 0);
  std::map<std::string, v1::AuditEvent> before = ById(h.AuditEvents());
  ASSERT_EQ(h.Stop(), 0) << h.DaemonLog();  // the collector was never up: all of it is spooled
  ASSERT_TRUE(hec.Start().ok()) << hec.Log();
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::set<std::string> got;
        for (const auto& e : hec.Events()) got.insert(e.id());
        for (const auto& [id, e] : before) {
          if (!got.count(id)) return false;
        }
        return true;
      },
      30))
      << hec.Log() << h.DaemonLog();
}

// A sink whose destination is dead (nothing listening) or black-holed (accepts, never
// answers) must not slow the data path: the same sessions take about as long as without.
TEST_F(AuditSinksTest, DeadSinksDoNotSlowSessions) {
  constexpr int kSessions = 1000;
  // The in-process echo service holds one fd per session, all open at once.
  rlimit rl;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  auto run = [&](const std::string& yaml, v1::StatusResponse* status, bool* dropped_event_seen) {
    InterlockdHarness h({.resources = {{"echo", "127.0.0.42", echo_.port()}}, .extra_yaml = yaml});
    EXPECT_TRUE(h.Start().ok()) << h.DaemonLog();
    auto start = std::chrono::steady_clock::now();
    CommandResult r = h.RunAgent("swarm",
                                 {BinaryPath("interlock-probe"), "concurrent", "127.0.0.42",
                                  absl::StrCat(echo_.port()), absl::StrCat(kSessions)},
                                 false, 300);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(ProbeField(r.out, "succeeded"), absl::StrCat(kSessions));
    EXPECT_TRUE(WaitFor(
        [&] {
          return OfKind(h.AuditEvents(), v1::AUDIT_KIND_SESSION_END).size() ==
                 static_cast<size_t>(kSessions);
        },
        60));
    if (dropped_event_seen != nullptr) {
      // Untimed: as many sessions again, which takes the 1 MiB spool past its bound.
      CommandResult more = h.RunAgent("swarm",
                                      {BinaryPath("interlock-probe"), "concurrent", "127.0.0.42",
                                       absl::StrCat(echo_.port()), absl::StrCat(kSessions)},
                                      false, 300);
      EXPECT_EQ(more.exit_code, 0) << more.out << more.err;
      *dropped_event_seen = WaitFor(
          [&] {
            for (const auto& e : OfKind(h.AuditEvents(), v1::AUDIT_KIND_DAEMON)) {
              if (e.reason() == "audit_sink_dropped" &&
                  absl::StrContains(e.detail(), "tiny-spool") &&
                  absl::StrContains(e.detail(), "events dropped")) {
                return true;
              }
            }
            return false;
          },
          10);
    }
    if (status != nullptr) {
      // The black hole answers nothing: its first batch fails only at its timeout.
      EXPECT_TRUE(WaitFor(
          [&] {
            *status = h.Status();
            for (const auto& a : status->audit_sinks()) {
              if (a.last_error().empty()) return false;
            }
            return true;
          },
          15))
          << status->DebugString();
    }
    return seconds;
  };
  const double baseline = run("", nullptr, nullptr);
  // A black hole: a listening socket nobody accepts from (connects succeed, no answer).
  UniqueFd hole(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(hole.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(hole.get(), 1024), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(hole.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  const uint16_t hole_port = ntohs(a.sin_port);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/hec-token", "t", 0600).ok());
  const std::string yaml = absl::StrCat(R"(audit:
  sinks:
    - name: dead-tcp
      queue_max_events: 100
      syslog: {address: "127.0.0.1:)",
                                        FreePort(), R"(", transport: SYSLOG_TRANSPORT_TCP}
    - name: tiny-spool
      queue_max_events: 16
      spool_max_mib: 1
      syslog: {address: "127.0.0.1:)",
                                        FreePort(), R"(", transport: SYSLOG_TRANSPORT_TCP}
    - name: black-hole-hec
      queue_max_events: 100
      hec:
        url: "http://127.0.0.1:)",
                                        hole_port, R"(/services/collector/event"
        token_ref: "file:)",
                                        dir_, R"(/hec-token"
        timeout_ms: 1000
)");
  v1::StatusResponse status;
  bool dropped_event_seen = false;
  const double with_sinks = run(yaml, &status, &dropped_event_seen);
  RecordProperty("baseline_s", absl::StrCat(baseline));
  RecordProperty("dead_sinks_s", absl::StrCat(with_sinks));
  std::printf("%d sessions: %.2f s without sinks, %.2f s with dead, full and black-holed sinks\n",
              kSessions, baseline, with_sinks);
  EXPECT_LT(with_sinks, baseline * 2 + 2.0);
  for (const char* name : {"dead-tcp", "black-hole-hec"}) {
    const v1::AuditSinkStatus* s = SinkStatus(status, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->sent_events(), 0u) << name;
    EXPECT_FALSE(s->last_error().empty()) << name;
    EXPECT_EQ(s->dropped_events(), 0u) << name;
    EXPECT_GE(s->queued_events() + s->spooled_events(), static_cast<uint64_t>(2 * kSessions))
        << name;
    std::printf("%s: %llu events spooled, %llu bytes, %llu retries\n", name,
                static_cast<unsigned long long>(s->spooled_events()),
                static_cast<unsigned long long>(s->spooled_bytes()),
                static_cast<unsigned long long>(s->retries()));
  }
  // Past its bound a spool drops the newest events, counts them and says so in the local file.
  const v1::AuditSinkStatus* tiny = SinkStatus(status, "tiny-spool");
  ASSERT_NE(tiny, nullptr);
  EXPECT_LE(tiny->spooled_bytes(), 1u << 20);
  EXPECT_GT(tiny->dropped_events(), 0u) << tiny->DebugString();
  EXPECT_TRUE(dropped_event_seen) << "no DAEMON audit_sink_dropped event in the local file";
}

}  // namespace
}  // namespace interlock::testing
