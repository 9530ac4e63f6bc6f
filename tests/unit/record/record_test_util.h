// Helpers for the record tests: a temp dir, a sample SessionOpen, and a ChainBuilder that
// writes hand-made (possibly malformed) recordings with correct framing and chaining.
#pragma once

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "interlock/v1/record.pb.h"
#include "userspace/record/format.h"
#include "userspace/record/signing_key.h"

namespace interlock::record::test {

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/record_test.XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~TempDir() {
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

inline v1::SessionOpen SampleOpen(absl::string_view session_id = "sess-0001") {
  v1::SessionOpen open;
  open.set_session_id(std::string(session_id));
  v1::WorkloadIdentity* id = open.mutable_identity();
  id->set_workload("billing-agent");
  id->set_cgroup_id(4242);
  id->set_cgroup_path("/interlock/workloads/billing-agent.3");
  id->set_pid(31337);
  id->set_tid(31337);
  id->set_uid(1000);
  id->set_gid(1000);
  id->set_user("alice");
  id->set_comm("python3");
  id->set_exe("/usr/bin/python3.11");
  open.set_resource("orders-api");
  open.mutable_original_destination()->set_address("10.0.0.5");
  open.mutable_original_destination()->set_port(80);
  open.mutable_upstream()->set_address("::1");
  open.mutable_upstream()->set_port(8080);
  open.set_protocol("tcp");
  return open;
}

// Builds a recording record by record, filling seq and prev_hash correctly unless told not to.
class ChainBuilder {
 public:
  // Appends `r` with the next seq and the right prev_hash; returns its serialized bytes.
  std::string Add(v1::Record r) {
    r.set_seq(seq_);
    r.set_prev_hash(prev_);
    return AddRaw(r);
  }
  // Appends `r` as is (the caller set seq/prev_hash) but still advances the chain.
  std::string AddRaw(const v1::Record& r) {
    std::string bytes = r.SerializeAsString();
    out_ += EncodeFrame(bytes);
    prev_ = HashRecord(bytes);
    ++seq_;
    return bytes;
  }
  // A correct seal by `key` over the current head, with `time` (must equal the close's).
  void Seal(const RecordingKey& key, absl::string_view session_id, int64_t time) {
    v1::Record r;
    r.set_time_unix_nanos(time);
    r.mutable_seal()->set_signature(*key.Sign(SealMessage(session_id, seq_, prev_)));
    r.mutable_seal()->set_key_fingerprint(key.Fingerprint());
    Add(r);
  }
  const std::string& bytes() const { return out_; }
  uint64_t seq() const { return seq_; }
  const std::string& prev_hash() const { return prev_; }

 private:
  std::string out_;
  uint64_t seq_ = 0;
  std::string prev_ = ZeroHash();
};

inline v1::Record OpenRecord(const RecordingKey& key, absl::string_view session_id = "sess-0001") {
  v1::Record r;
  r.set_time_unix_nanos(1000);
  *r.mutable_open() = SampleOpen(session_id);
  r.mutable_open()->set_key_fingerprint(key.Fingerprint());
  return r;
}

inline v1::Record DataRecord(v1::Direction dir, absl::string_view payload, int64_t time = 2000) {
  v1::Record r;
  r.set_time_unix_nanos(time);
  r.mutable_data()->set_direction(dir);
  r.mutable_data()->set_payload(std::string(payload));
  return r;
}

inline v1::Record CloseRecord(int64_t time = 3000) {
  v1::Record r;
  r.set_time_unix_nanos(time);
  r.mutable_close()->set_outcome("closed");
  return r;
}

}  // namespace interlock::record::test
