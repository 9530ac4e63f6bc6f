// Audit micro-benchmarks: the per-statement audit event, the one cost every proxied
// statement pays besides relaying. Emit is what PgSession does per statement: a realistic
// event (workload identity, destination, statement info) stamped and serialized into the
// JSON-lines sink's buffer (written to a temp file in 64 KiB batches, as in interlockd),
// chained (seq, prev_sha256: one SHA-256 of the line per event, no system call).
//
//   ninja -C build audit_bench && build/tools/bench/audit_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "userspace/audit/audit_log.h"
#include "userspace/common/clock.h"
#include "userspace/common/sha256.h"

namespace interlock::audit {
namespace {

v1::AuditEvent StatementEvent() {
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_STATEMENT);
  ev.set_session_id("5f0c3e7a9b1d4c2e8f6a0b3c5d7e9f1a");
  v1::WorkloadIdentity* id = ev.mutable_identity();
  id->set_workload("billing-agent");
  id->set_cgroup_id(12345);
  id->set_cgroup_path("/sys/fs/cgroup/interlock/billing-agent");
  id->set_pid(4242);
  id->set_tid(4243);
  id->set_uid(1000);
  id->set_gid(1000);
  id->set_user("agent");
  id->set_login_uid(1000);
  id->set_comm("pgbench");
  id->set_exe("/usr/lib/postgresql/15/bin/pgbench");
  ev.set_resource("customers-db");
  ev.mutable_original_destination()->set_address("127.0.0.45");
  ev.mutable_original_destination()->set_port(5432);
  ev.set_protocol("postgres");
  ev.set_outcome("ok");
  v1::StatementInfo* s = ev.mutable_statement();
  s->set_protocol("simple");
  s->set_database("bench");
  s->set_user("bench");
  s->set_text("SELECT abalance FROM pgbench_accounts WHERE aid = 612345;");
  s->set_text_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  s->add_command_tags("SELECT 1");
  s->set_rows(1);
  s->set_duration_us(87);
  s->set_status("ok");
  return ev;
}

// An AuditLog writing to audit.jsonl in a temp directory (as interlockd writes it), the
// directory removed after with the files a rotation set beside the live one.
struct TempAuditLog {
  TempAuditLog() : log(Sink(dir), RealClock::Get()) {}
  ~TempAuditLog() {
    (void)log.Flush();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  static std::unique_ptr<AuditSink> Sink(char* dir) {
    if (::mkdtemp(dir) == nullptr) std::abort();
    auto sink = JsonLinesSink::Create(std::string(dir) + "/audit.jsonl");
    if (!sink.ok()) std::abort();
    return std::move(sink).value();
  }
  char dir[40] = "/tmp/interlock-audit-bench-XXXXXX";
  AuditLog log;
};

void BM_EventToJsonLine(benchmark::State& state) {
  v1::AuditEvent ev = StatementEvent();
  ev.set_id("0123456789abcdef0000000000000001");
  ev.set_time("2026-11-26T07:30:00.123456789Z");
  ev.set_host("bank-host-17");
  size_t bytes = 0;
  for (auto _ : state) {
    std::string line = EventToJsonLine(ev);
    bytes += line.size();
    benchmark::DoNotOptimize(line);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EventToJsonLine);

void BM_FormatRfc3339(benchmark::State& state) {
  absl::Time t = absl::Now();
  for (auto _ : state) {
    t += absl::Microseconds(37);
    benchmark::DoNotOptimize(FormatRfc3339(t));
  }
}
BENCHMARK(BM_FormatRfc3339);

// A fresh event per statement: copy the session's identity and destination in, move the
// statement in, Emit (what PgSession::AuditStatements did before reusing one event).
void BM_EmitStatement(benchmark::State& state) {
  TempAuditLog temp;
  AuditLog& log = temp.log;
  const v1::AuditEvent proto = StatementEvent();
  for (auto _ : state) {
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_STATEMENT);
    ev.set_session_id(proto.session_id());
    *ev.mutable_identity() = proto.identity();
    ev.set_resource(proto.resource());
    *ev.mutable_original_destination() = proto.original_destination();
    ev.set_protocol("postgres");
    ev.set_outcome("ok");
    *ev.mutable_statement() = proto.statement();
    if (!log.Emit(std::move(ev)).ok()) std::abort();
  }
}
BENCHMARK(BM_EmitStatement);

// What it does now: one event per session, reused; only the statement and outcome change.
void BM_EmitStatementReused(benchmark::State& state) {
  TempAuditLog temp;
  AuditLog& log = temp.log;
  const v1::AuditEvent proto = StatementEvent();
  v1::AuditEvent ev = proto;
  ev.clear_statement();
  for (auto _ : state) {
    v1::StatementInfo s = proto.statement();  // the tracker's fresh statement
    ev.clear_id();
    ev.clear_time();
    ev.set_outcome(s.status());
    ev.mutable_statement()->Swap(&s);
    if (!log.Emit(&ev).ok()) std::abort();
  }
}
BENCHMARK(BM_EmitStatementReused);

// What the audit chain adds per event: the SHA-256 of the line as buffered (the seq and
// prev_sha256 fields are part of EventToJsonLine's cost in the benchmarks above).
void BM_ChainLineHash(benchmark::State& state) {
  v1::AuditEvent ev = StatementEvent();
  ev.set_id("0123456789abcdef0000000000000001");
  ev.set_time("2026-11-26T07:30:00.123456789Z");
  ev.set_host("bank-host-17");
  ev.set_seq(123456);
  ev.set_prev_sha256(std::string(64, 'a'));
  const std::string line = EventToJsonLine(ev);
  for (auto _ : state) benchmark::DoNotOptimize(Sha256Hex(line));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}
BENCHMARK(BM_ChainLineHash);

}  // namespace
}  // namespace interlock::audit

BENCHMARK_MAIN();
