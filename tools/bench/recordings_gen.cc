// recordings_gen DIR N [RECORDS]: writes N sealed session recordings into DIR (created),
// each with RECORDS data records (default 20) through the real Recorder, signed with a
// fresh recording key in DIR/.., and the index entry interlockd would append when each
// session ends. For tools/bench/sessions_bench.sh.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/clock.h"
#include "userspace/common/file_util.h"
#include "userspace/record/recorder.h"
#include "userspace/record/session_index.h"
#include "userspace/record/signing_key.h"

using namespace interlock;  // NOLINT: a tool's main

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: recordings_gen STATE_DIR N [RECORDS]\n");
    return 2;
  }
  const std::string state_dir = argv[1];
  const int n = std::atoi(argv[2]);
  const int records = argc > 3 ? std::atoi(argv[3]) : 20;
  const std::string dir = absl::StrCat(state_dir, "/recordings");
  if (!MakeDirs(dir, 0700).ok()) return 1;
  auto key = record::RecordingKey::LoadOrCreate(state_dir);
  if (!key.ok()) {
    std::fprintf(stderr, "%s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  auto index = record::RecordingIndex::Open(absl::StrCat(dir, "/", record::kRecordingIndexName));
  if (!index.ok()) return 1;
  const Clock& clock = RealClock::Get();
  record::FileCache files(64);
  const std::string query(200, 'q');
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrFormat("bench%011d", i);
    v1::SessionOpen open;
    open.set_session_id(id);
    open.mutable_identity()->set_workload("bench-agent");
    open.mutable_identity()->set_pid(1000 + i);
    open.set_resource("appdb");
    open.mutable_original_destination()->set_address("127.0.0.43");
    open.mutable_original_destination()->set_port(5432);
    open.set_protocol("postgres");
    const absl::Time started = clock.Now();
    record::RecorderOptions ropts;
    ropts.files = &files;
    auto rec = record::Recorder::Create(absl::StrCat(dir, "/", id, ".rec"), open, *key, clock, ropts);
    if (!rec.ok()) {
      std::fprintf(stderr, "%s\n", std::string(rec.status().message()).c_str());
      return 1;
    }
    for (int k = 0; k < records; ++k) {
      (void)(*rec)->AppendData(k % 2 == 0 ? v1::DIRECTION_TO_UPSTREAM : v1::DIRECTION_TO_AGENT, query);
    }
    v1::SessionClose close;
    close.set_outcome("closed");
    if (absl::Status st = (*rec)->Close(close); !st.ok()) {
      std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
      return 1;
    }
    v1::RecordingIndexEntry e;
    v1::SessionSummary* s = e.mutable_summary();
    s->set_session_id(id);
    s->set_workload("bench-agent");
    s->set_pid(1000 + i);
    s->set_resource("appdb");
    *s->mutable_original_destination() = open.original_destination();
    s->set_started(audit::FormatRfc3339(started));
    s->set_bytes_to_upstream((*rec)->bytes_to_upstream());
    s->set_bytes_to_agent((*rec)->bytes_to_agent());
    s->set_outcome("closed");
    s->set_state("sealed");
    s->set_records((*rec)->records());
    if (!(*index)->Append(e).ok()) return 1;
  }
  return 0;
}
