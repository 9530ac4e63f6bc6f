// The attacker's bench for the PostgreSQL guardrails: a real PostgreSQL 15 holding the
// bank's customers (SSNs, card numbers, IBANs), a real interlockd with the *shipped* bank
// policy and its `pii` mask profile (packaging/examples/bank-policy.yaml, the demo's too),
// the real eBPF redirect, and the agent as an unprivileged enrolled process (uid nobody)
// using unmodified clients: psql and psycopg2.
//
// Each evasion suite (evasion_*_test.cc) derives from EvasionTest and tries one class of
// way around masking or holds; it asserts that no form of a seeded secret appears anywhere
// in what the agent received (stdout and stderr: rows, errors, notices, notifications,
// parameter statuses), or that the statement did not run (checked as the superuser).
//
//   TEST_F(EvasionTest, CastErrorsDoNotEchoValues) {
//     AgentResult r = Psql("SELECT ssn::int FROM customers WHERE id = 1");
//     ExpectNoSecrets(r);
//   }
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {

// The seeded values that must never reach the agent, as stored.
inline const std::vector<std::string>& SeededSecrets() {
  static const std::vector<std::string> kSecrets = {
      "078-05-1120", "219-09-9999", "4111 1111 1111 1111", "5500-0000-0000-0004",
      "GB82WEST12345698765432", "DE89370400440532013000"};
  return kSecrets;
}

// Every spelling of a secret an agent could ask for and still read it: as stored, digits
// (or alphanumerics) only, reversed, hex of its bytes, and each reversed again.
inline std::vector<std::string> SecretSpellings() {
  std::vector<std::string> out;
  for (const std::string& s : SeededSecrets()) {
    std::string compact;
    for (char c : s) {
      if (absl::ascii_isalnum(static_cast<unsigned char>(c))) compact.push_back(c);
    }
    for (std::string v : {s, compact}) {
      out.push_back(v);
      out.push_back(std::string(v.rbegin(), v.rend()));
      std::string hex;
      for (unsigned char c : v) absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
      out.push_back(hex);
    }
  }
  return out;
}

struct AgentResult {
  int exit_code = -1;
  std::string out;  // stdout + "\n" + stderr: everything the agent's client showed it
};

class EvasionTest : public ::testing::Test {
 protected:
  static constexpr char kPassword[] = "evasion-test-secret";

  void SetUp() override { StartBench(""); }
  void TearDown() override {
    h_.reset();
    pg_.reset();
    if (!dir_.empty()) RemoveTree(dir_);
  }

  // Starts PostgreSQL and interlockd; `extra_config_yaml` is appended to interlockd's config.
  void StartBench(const std::string& extra_config_yaml) {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-evasion-");
    ::chmod(dir_.c_str(), 0755);
    pg_ = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.61"});
    ASSERT_TRUE(pg_->Start().ok()) << pg_->Log();
    ASSERT_TRUE(pg_->Psql(absl::StrCat("CREATE ROLE bank_rw LOGIN PASSWORD '", kPassword, "'")).ok());
    ASSERT_TRUE(pg_->Psql("CREATE DATABASE bank OWNER bank_rw").ok());
    auto seeded = pg_->Psql(R"SQL(
SET ROLE bank_rw;
CREATE TABLE customers(id int primary key, name text, ssn text, card_number text, iban text, note text);
INSERT INTO customers VALUES
  (1, 'Ada Lovelace', '078-05-1120', '4111 1111 1111 1111', 'GB82WEST12345698765432', 'vip'),
  (2, 'Alan Turing', '219-09-9999', '5500-0000-0000-0004', 'DE89370400440532013000', 'new');
CREATE TABLE accounts(id int primary key, cid int, balance numeric);
INSERT INTO accounts VALUES (1, 1, 100), (2, 2, 250);
CREATE VIEW customer_directory AS SELECT id, name, ssn AS tax_id FROM customers;
CREATE FUNCTION complain(v text) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN RAISE NOTICE 'saw %', v; RAISE EXCEPTION 'bad value %', v USING DETAIL = v, HINT = v; END$$;
)SQL",
                           "bank");
    ASSERT_TRUE(seeded.ok()) << seeded.status();
    ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir_, "/bank.pw"), kPassword, 0600).ok());
    CommandResult keygen =
        RunCommand({BinaryPath("interlock"), "auditor-keygen", "--out", absl::StrCat(dir_, "/auditor")});
    ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
    h_ = std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {{"bank-db", pg_->address(), pg_->port(),
                       absl::StrCat("    protocol: PROTOCOL_POSTGRES\n    postgres:\n"
                                    "      login: {user: bank_rw, database: bank, password_ref: \"file:",
                                    dir_, "/bank.pw\"}\n      sslmode: disable\n"
                                    "      allow_unverified_upstream: true\n")}},
        .extra_yaml = absl::StrCat("policy_file: ", INTERLOCK_BANK_POLICY, "\nauditor_public_key_file: ", dir_,
                                   "/auditor.pub\n", extra_config_yaml)});
    ASSERT_TRUE(h_->Start().ok()) << h_->DaemonLog();
  }

  // psql as the agent "billing-agent" (uid nobody, no password, its own user and database
  // names), each `sql` as one -c; ON_ERROR_STOP off so every statement is tried.
  AgentResult Psql(const std::vector<std::string>& sqls, int timeout_s = 60) {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "PGPASSWORD", "/usr/bin/psql", "-X", "-h",
                                     pg_->address(), "-p", absl::StrCat(pg_->port()), "-U", "agent",
                                     "-d", "bank", "-v", "VERBOSITY=verbose", "-At"};
    for (const std::string& s : sqls) {
      argv.push_back("-c");
      argv.push_back(s);
    }
    CommandResult r = h_->RunAgent("billing-agent", argv, AgentOptions{.timeout_s = timeout_s});
    return {r.exit_code, absl::StrCat(r.out, "\n", r.err)};
  }
  AgentResult Psql(const std::string& sql, int timeout_s = 60) {
    return Psql(std::vector<std::string>{sql}, timeout_s);
  }

  // A psycopg2 program as the agent. `body` runs with `conn` (autocommit) and `cur` open
  // and may print; afterwards every notice, notification and reported parameter status
  // the connection received is printed too, and an exception's every diagnostic field.
  AgentResult Python(const std::string& body, int timeout_s = 60) {
    std::string indented = absl::StrReplaceAll(body, {{"\n", "\n    "}});
    std::string program = absl::StrCat(R"PY(
import sys, psycopg2
conn = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user="agent", dbname="bank", connect_timeout=30)
conn.autocommit = True
cur = conn.cursor()
def everything():
    for n in conn.notices: print("NOTICE", n)
    for n in conn.notifies: print("NOTIFY", n.channel, n.payload)
    for k in ("application_name", "client_encoding", "DateStyle", "TimeZone", "search_path",
              "standard_conforming_strings", "IntervalStyle", "session_authorization", "is_superuser"):
        print("PARAM", k, conn.get_parameter_status(k))
try:
    )PY",
                                       indented, R"PY(
except psycopg2.Error as e:
    print("ERROR", e.pgcode, e.pgerror)
    d = e.diag
    for f in ("message_primary", "message_detail", "message_hint", "context", "internal_query",
              "schema_name", "table_name", "column_name", "constraint_name", "datatype_name"):
        print("DIAG", f, getattr(d, f, None))
    try:
        conn.rollback()
    except Exception:
        pass
everything()
)PY");
    CommandResult r = h_->RunAgent(
        "billing-agent", {"/usr/bin/python3", "-c", program, pg_->address(), absl::StrCat(pg_->port())},
        AgentOptions{.timeout_s = timeout_s});
    return {r.exit_code, absl::StrCat(r.out, "\n", r.err)};
  }

  // A hand-spoken PostgreSQL client as the agent (/usr/bin/python3, raw socket), for what
  // psql and psycopg2 do not send (binary results, bound parameters): `body` runs after
  // the startup (as user "agent", database "bank") with send(type, body), read() and
  // until_ready() (prints every message up to ReadyForQuery as `<type> <bytes>`).
  AgentResult RawProtocol(const std::string& body, int timeout_s = 60) {
    std::string program = absl::StrCat(R"PY(
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
buf = b""
def send(t, body): s.sendall(t + struct.pack("!I", len(body) + 4) + body)
def read():
    global buf
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
        d = s.recv(65536)
        if not d: sys.exit("eof")
        buf += d
    n = struct.unpack("!I", buf[1:5])[0]
    m, buf = buf[:1 + n], buf[1 + n:]
    return m[:1], m[5:]
def until_ready():
    while True:
        t, b = read()
        print(t.decode(), b)
        if t == b"Z": return
params = b"user\0agent\0database\0bank\0\0"
s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
until_ready()
)PY",
                                       body, "\nsend(b\"X\", b\"\")\n");
    CommandResult c = h_->RunAgent("billing-agent",
                                   {"/usr/bin/python3", "-c", program, pg_->address(), absl::StrCat(pg_->port())},
                                   AgentOptions{.timeout_s = timeout_s});
    return {c.exit_code, absl::StrCat(c.out, "\n", c.err)};
  }

  // No spelling of any seeded secret in what the agent received.
  static void ExpectNoSecrets(const AgentResult& r, const std::string& what) {
    for (const std::string& s : SecretSpellings()) {
      EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr(s))) << what << ":\n" << r.out;
    }
  }

  // As the superuser, over the server's own socket (not through interlockd).
  std::string Direct(const std::string& sql) {
    auto r = pg_->Psql(sql, "bank");
    return r.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*r)) : absl::StrCat("error: ", r.status().message());
  }

  std::string dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<InterlockdHarness> h_;
};

}  // namespace interlock::testing
