// SQL micro-benchmarks: what interlockd's PostgreSQL guard spends on each statement it
// has not seen before in the session, step by step. With the bank policy, Classify is the
// largest share of interlockd's CPU per pgbench transaction (README "Benchmark"), so its
// parts are measured one by one: the lexer pass that bounds nesting (ScanSql), the parse
// into libpg_query's protobuf tree and its decode (ParseSql), the second parse for the
// fingerprint (FingerprintSql), the whole Classify, and the literal normalizer the audit
// and the recording use (NormalizeLiterals).
//
//   ninja -C build classify_bench && build/tools/bench/classify_bench
#include <benchmark/benchmark.h>

#include <string>

#include "userspace/sql/classify.h"
#include "userspace/sql/normalize.h"
#include "userspace/sql/parser.h"

namespace interlock::sql {
namespace {

// pgbench's -S statement, one of its TPC-B-like UPDATEs, and what an agent writes.
const char* const kStatements[] = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = 482913;",
    "UPDATE pgbench_accounts SET abalance = abalance + -4021 WHERE aid = 482913;",
    "SELECT c.id, c.name, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id "
    "WHERE o.created_at > now() - interval '30 days' AND c.country = 'DE' GROUP BY c.id, c.name "
    "ORDER BY spent DESC LIMIT 20",
};
const char* const kNames[] = {"pgbench_select", "pgbench_update", "agent_join"};

template <typename Fn>
void Run(benchmark::State& state, Fn fn) {
  const std::string sql = kStatements[state.range(0)];
  state.SetLabel(kNames[state.range(0)]);
  for (auto _ : state) {
    auto r = fn(sql);
    benchmark::DoNotOptimize(r);
  }
}

void BM_ScanSql(benchmark::State& s) { Run(s, [](const std::string& q) { return ScanSql(q); }); }
void BM_ParseSql(benchmark::State& s) { Run(s, [](const std::string& q) { return ParseSql(q); }); }
void BM_FingerprintSql(benchmark::State& s) { Run(s, [](const std::string& q) { return FingerprintSql(q); }); }
void BM_Classify(benchmark::State& s) { Run(s, [](const std::string& q) { return Classify(q); }); }
void BM_NormalizeLiterals(benchmark::State& s) {
  Run(s, [](const std::string& q) { return NormalizeLiterals(q); });
}

BENCHMARK(BM_ScanSql)->DenseRange(0, 2);
BENCHMARK(BM_ParseSql)->DenseRange(0, 2);
BENCHMARK(BM_FingerprintSql)->DenseRange(0, 2);
BENCHMARK(BM_Classify)->DenseRange(0, 2);
BENCHMARK(BM_NormalizeLiterals)->DenseRange(0, 2);

}  // namespace
}  // namespace interlock::sql

BENCHMARK_MAIN();
