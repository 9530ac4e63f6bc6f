#include "userspace/record/recorder.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"
#include "userspace/record/format.h"
#include "userspace/record/reader.h"
#include "userspace/record/sealed_box.h"
#include "userspace/record/verifier.h"

namespace interlock::record {
namespace {

using test::SampleOpen;
using test::TempDir;
using ::testing::HasSubstr;

class RecorderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Recorder> MakeRecorder(absl::string_view name = "s.rec") {
    auto rec = Recorder::Create(dir_.File(name), SampleOpen(), key_, clock_);
    EXPECT_TRUE(rec.ok()) << rec.status();
    return rec.ok() ? *std::move(rec) : nullptr;
  }
  std::string Contents(absl::string_view name = "s.rec") {
    auto bytes = ReadFile(dir_.File(name));
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *bytes : "";
  }

  TempDir dir_;
  RecordingKey key_ = RecordingKey::Generate();
  interlock::testing::FakeClock clock_{absl::FromUnixSeconds(1767225600)};
};

TEST_F(RecorderTest, RoundTripIsValid) {
  auto rec = MakeRecorder();
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, "GET / HTTP/1.1\r\n\r\n").ok());
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "HTTP/1.1 200 OK\r\n\r\nhi").ok());
  ASSERT_TRUE(rec->AppendEvent("agent_half_close", "shutdown(SHUT_WR)").ok());
  v1::SessionClose close;
  close.set_outcome("closed");
  ASSERT_TRUE(rec->Close(close).ok());
  EXPECT_TRUE(rec->closed());
  EXPECT_EQ(rec->records(), 6u);
  EXPECT_EQ(rec->bytes_to_upstream(), 18u);
  EXPECT_EQ(rec->bytes_to_agent(), 21u);

  const VerifyReport report = VerifyRecording(Contents(), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;
  EXPECT_EQ(report.records_ok, 6u);
  EXPECT_EQ(report.last_good_seq, 5u);
  EXPECT_EQ(report.session_id, "sess-0001");

  Recording r = ReadRecording(Contents());
  ASSERT_TRUE(r.stop.ok()) << r.stop;
  ASSERT_EQ(r.records.size(), 6u);
  EXPECT_EQ(r.records[0].open().key_fingerprint(), key_.Fingerprint());
  EXPECT_EQ(r.records[0].open().identity().workload(), "billing-agent");
  EXPECT_EQ(r.records[4].close().bytes_to_upstream(), 18u);
  EXPECT_EQ(r.records[4].close().bytes_to_agent(), 21u);
  EXPECT_EQ(r.records[4].close().outcome(), "closed");
  EXPECT_TRUE(r.records[5].has_seal());
}

TEST_F(RecorderTest, SshEventsAreChainedCountedAndSplit) {
  auto rec = MakeRecorder();
  v1::SshEvent req;
  req.set_channel(3);
  req.mutable_request()->set_type("exec");
  req.mutable_request()->set_command("uptime \xff");  // not UTF-8: sanitized, not refused
  req.mutable_request()->set_decision("allow");
  ASSERT_TRUE(rec->AppendSsh(req).ok());
  v1::SshEvent in;
  in.set_channel(3);
  in.mutable_data()->set_stream(v1::SSH_STREAM_STDIN);
  in.mutable_data()->set_payload("y\n");
  ASSERT_TRUE(rec->AppendSsh(in).ok());
  v1::SshEvent out;
  out.set_channel(3);
  out.mutable_data()->set_stream(v1::SSH_STREAM_STDOUT);
  out.mutable_data()->set_payload(std::string(kMaxPayloadBytes + 5, '\xfe'));  // binary kept as is
  ASSERT_TRUE(rec->AppendSsh(out).ok());
  v1::SessionClose close;
  close.set_outcome("closed");
  ASSERT_TRUE(rec->Close(close).ok());
  EXPECT_EQ(rec->bytes_to_upstream(), 2u);
  EXPECT_EQ(rec->bytes_to_agent(), kMaxPayloadBytes + 5);
  EXPECT_EQ(rec->records(), 7u);  // open, request, stdin, stdout x2, close, seal

  const VerifyReport report = VerifyRecording(Contents(), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;
  const Recording read = ReadRecording(Contents());
  ASSERT_TRUE(read.stop.ok()) << read.stop;
  const auto* records = &read.records;
  ASSERT_GE(records->size(), 5u);
  EXPECT_EQ((*records)[1].ssh().request().command(), "uptime \xef\xbf\xbd");
  EXPECT_EQ((*records)[3].ssh().data().payload(), std::string(kMaxPayloadBytes, '\xfe'));
  EXPECT_EQ((*records)[4].ssh().data().payload(), std::string(5, '\xfe'));
  EXPECT_EQ((*records)[4].ssh().channel(), 3u);
}

TEST_F(RecorderTest, CreatesFile0600AndRefusesExisting) {
  auto rec = MakeRecorder();
  struct stat st;
  ASSERT_EQ(::stat(dir_.File("s.rec").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  // Record 0 is on disk right after Create.
  EXPECT_EQ(ReadRecording(Contents()).records.size(), 1u);
  auto again = Recorder::Create(dir_.File("s.rec"), SampleOpen(), key_, clock_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("s.rec"));
}

TEST_F(RecorderTest, EmptySessionIdIsRefused) {
  auto rec = Recorder::Create(dir_.File("x.rec"), v1::SessionOpen(), key_, clock_);
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecorderTest, FakeClockTimestampsAppearInRecords) {
  const int64_t t0 = absl::ToUnixNanos(clock_.Now());
  auto rec = MakeRecorder();
  clock_.Advance(absl::Milliseconds(12));
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, "a").ok());
  clock_.Advance(absl::Microseconds(345));
  ASSERT_TRUE(rec->AppendEvent("tick", "").ok());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(rec->Close(v1::SessionClose()).ok());
  Recording r = ReadRecording(Contents());
  ASSERT_EQ(r.records.size(), 5u);
  EXPECT_EQ(r.records[0].time_unix_nanos(), t0);
  EXPECT_EQ(r.records[1].time_unix_nanos(), t0 + 12'000'000);
  EXPECT_EQ(r.records[2].time_unix_nanos(), t0 + 12'345'000);
  EXPECT_EQ(r.records[3].time_unix_nanos(), t0 + 2'012'345'000);
  // The seal carries the close's time.
  EXPECT_EQ(r.records[4].time_unix_nanos(), r.records[3].time_unix_nanos());
}

TEST_F(RecorderTest, SplitsPayloadsOverOneMebibyte) {
  std::string big(2 * kMaxPayloadBytes + 12345, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  auto rec = MakeRecorder();
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, big).ok());
  ASSERT_TRUE(rec->Close(v1::SessionClose()).ok());
  EXPECT_EQ(rec->bytes_to_agent(), big.size());

  const std::string file = Contents();
  EXPECT_EQ(VerifyRecording(file, key_.public_key()).verdict, VerifyReport::kValid);
  Recording r = ReadRecording(file);
  ASSERT_TRUE(r.stop.ok()) << r.stop;
  ASSERT_EQ(r.records.size(), 6u);  // open, 3 data, close, seal
  EXPECT_EQ(r.records[1].data().payload().size(), kMaxPayloadBytes);
  EXPECT_EQ(r.records[2].data().payload().size(), kMaxPayloadBytes);
  EXPECT_EQ(r.records[3].data().payload().size(), 12345u);
  EXPECT_EQ(
      r.records[1].data().payload() + r.records[2].data().payload() + r.records[3].data().payload(),
      big);
  EXPECT_EQ(r.records[4].close().bytes_to_agent(), big.size());
}

TEST_F(RecorderTest, BuffersUntilFlushOrThreshold) {
  auto rec = MakeRecorder();
  const size_t after_open = Contents().size();
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, "small").ok());
  EXPECT_EQ(Contents().size(), after_open);
  EXPECT_GT(rec->buffered_bytes(), 0u);
  ASSERT_TRUE(rec->Flush().ok());
  EXPECT_EQ(rec->buffered_bytes(), 0u);
  EXPECT_GT(Contents().size(), after_open);

  const size_t after_flush = Contents().size();
  const std::string chunk(1000, 'x');
  while (Contents().size() == after_flush) {
    ASSERT_LE(rec->buffered_bytes(), Recorder::kFlushThresholdBytes);
    ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, chunk).ok());
  }
  EXPECT_EQ(rec->buffered_bytes(), 0u);
  EXPECT_GT(Contents().size(), after_flush + Recorder::kFlushThresholdBytes);
}

TEST_F(RecorderTest, DestroyedWithoutCloseIsIncomplete) {
  {
    auto rec = MakeRecorder();
    ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, "hello").ok());
    ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "world").ok());
  }
  const VerifyReport report = VerifyRecording(Contents(), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kIncomplete) << report.detail;
  EXPECT_EQ(report.records_ok, 3u);
  EXPECT_EQ(report.last_good_seq, 2u);
  EXPECT_THAT(report.detail, HasSubstr("without a seal"));
}

TEST_F(RecorderTest, CallsAfterCloseFail) {
  auto rec = MakeRecorder();
  ASSERT_TRUE(rec->Close(v1::SessionClose()).ok());
  EXPECT_EQ(rec->AppendData(v1::DIRECTION_TO_AGENT, "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rec->AppendEvent("k", "d").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rec->Flush().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rec->Close(v1::SessionClose()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RecorderTest, UnspecifiedDirectionIsRefused) {
  auto rec = MakeRecorder();
  EXPECT_EQ(rec->AppendData(v1::DIRECTION_UNSPECIFIED, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(rec->status().ok());  // not sticky: nothing was written
  EXPECT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "").ok());
  EXPECT_EQ(rec->records(), 1u);
}

TEST_F(RecorderTest, OversizedEventTextIsCut) {
  auto rec = MakeRecorder();
  ASSERT_TRUE(rec->AppendEvent("upstream_error", std::string(5 * 1024 * 1024, 'e')).ok());
  ASSERT_TRUE(rec->Close(v1::SessionClose()).ok());
  Recording r = ReadRecording(Contents());
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[1].event().detail().size(), Recorder::kMaxTextBytes);
  EXPECT_EQ(VerifyRecording(Contents(), key_.public_key()).verdict, VerifyReport::kValid);
}

TEST_F(RecorderTest, InvalidUtf8TextStillVerifies) {
  // proto3 strings must be UTF-8 or the file would not parse back; paths and errors can hold
  // any bytes, so the recorder replaces invalid bytes with U+FFFD.
  v1::SessionOpen open = SampleOpen();
  open.mutable_identity()->set_exe(
      "/opt/\xff\xfe"
      "agent");
  auto rec = Recorder::Create(dir_.File("u.rec"), open, key_, clock_);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_TRUE(
      (*rec)->AppendEvent("upstream_error", "bad \xc3 byte, ok \xc3\xa9, \xed\xa0\x80").ok());
  v1::SessionClose close;
  close.set_outcome("closed");
  close.set_detail(std::string(Recorder::kMaxTextBytes - 1, 'x') + "\xc3\xa9");  // cut mid-char
  ASSERT_TRUE((*rec)->Close(close).ok());
  const std::string file = Contents("u.rec");
  const VerifyReport report = VerifyRecording(file, key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;
  Recording r = ReadRecording(file);
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[0].open().identity().exe(), "/opt/\uFFFD\uFFFDagent");
  EXPECT_EQ(r.records[1].event().detail(), "bad \uFFFD byte, ok \u00e9, \uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(r.records[2].close().detail(),
            std::string(Recorder::kMaxTextBytes - 1, 'x') + "\uFFFD");
}

// A file size limit makes write(2) fail with EFBIG: a real write error without fault hooks.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    struct rlimit lim = old_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  struct rlimit old_;
  sighandler_t old_handler_;
};

TEST_F(RecorderTest, WriteErrorIsSticky) {
  auto rec = MakeRecorder();
  const size_t size = Contents().size();
  absl::Status st;
  {
    FileSizeLimit limit(size + 100);
    ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, std::string(4096, 'a')).ok());
    st = rec->Flush();
  }
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("s.rec"));
  EXPECT_EQ(rec->status(), st);
  // Even with the limit gone, the recorder stays failed.
  EXPECT_EQ(rec->AppendData(v1::DIRECTION_TO_AGENT, "x"), st);
  EXPECT_EQ(rec->AppendEvent("k", "d"), st);
  EXPECT_EQ(rec->Flush(), st);
  EXPECT_EQ(rec->Close(v1::SessionClose()), st);
  const VerifyReport report = VerifyRecording(Contents(), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kIncomplete) << report.detail;
  EXPECT_EQ(report.records_ok, 1u);
}

// ---- sealed originals ----

TEST_F(RecorderTest, SealedOriginalsVerifyAndOpenWithTheAuditorKey) {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  auto created = Recorder::Create(dir_.File("s.rec"), SampleOpen(), key_, clock_,
                                  {.auditor_public_key = auditor.public_key()});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Recorder> rec = *std::move(created);
  EXPECT_TRUE(rec->keeps_originals());
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "row: a***@example.com").ok());
  ASSERT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_AGENT, "row: zelda@example.com").ok());
  ASSERT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_AGENT, "").ok());  // records nothing
  ASSERT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_UPSTREAM, "up").ok());
  v1::SessionClose close;
  close.set_outcome("closed");
  ASSERT_TRUE(rec->Close(close).ok());
  EXPECT_EQ(rec->records(), 6u);
  EXPECT_EQ(rec->bytes_to_agent(), 21u);  // the masked bytes only
  EXPECT_EQ(rec->sealed_bytes(), 24u);

  const VerifyReport report = VerifyRecording(Contents(), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;
  EXPECT_EQ(report.records_ok, 6u);

  Recording r = ReadRecording(Contents());
  ASSERT_EQ(r.records.size(), 6u);
  const v1::SessionOpen& open = r.records[0].open();
  EXPECT_EQ(open.sealed_originals_key().size(), kX25519KeyBytes);
  EXPECT_EQ(open.auditor_key_fingerprint(), auditor.Fingerprint());
  ASSERT_TRUE(r.records[2].has_sealed());
  EXPECT_EQ(r.records[2].sealed().direction(), v1::DIRECTION_TO_AGENT);
  EXPECT_EQ(r.records[2].sealed().counter(), 0u);
  EXPECT_EQ(r.records[3].sealed().counter(), 1u);
  EXPECT_EQ(r.records[2].sealed().ciphertext().find("zelda"), std::string::npos);
  EXPECT_EQ(Contents().find("zelda"), std::string::npos);  // nowhere in the file in clear

  auto u = UnsealingStream::Create(auditor, open.sealed_originals_key());
  ASSERT_TRUE(u.ok()) << u.status();
  auto plain = (*u)->Open(r.records[2].sealed().counter(), r.records[2].sealed().ciphertext(),
                          SealedDataAad("sess-0001", 2));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "row: zelda@example.com");
  // The AAD binds the box to its seq: moved elsewhere in the chain it does not open.
  EXPECT_EQ((*u)->Open(r.records[2].sealed().counter(), r.records[2].sealed().ciphertext(),
                       SealedDataAad("sess-0001", 3))
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(RecorderTest, WithoutAuditorKeyAppendSealedIsFailedPrecondition) {
  v1::SessionOpen open = SampleOpen();
  open.set_sealed_originals_key(std::string(32, 'k'));  // not the caller's to claim
  open.set_auditor_key_fingerprint("ab");
  auto rec = *Recorder::Create(dir_.File("s.rec"), open, key_, clock_);
  EXPECT_FALSE(rec->keeps_originals());
  absl::Status st = rec->AppendSealed(v1::DIRECTION_TO_AGENT, "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(rec->status().ok());  // not sticky
  ASSERT_TRUE(rec->Flush().ok());
  Recording r = ReadRecording(Contents());
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].open().sealed_originals_key().empty());
  EXPECT_TRUE(r.records[0].open().auditor_key_fingerprint().empty());
}

TEST_F(RecorderTest, BadAuditorKeyFailsCreateAndLeavesNoFile) {
  auto rec = Recorder::Create(dir_.File("s.rec"), SampleOpen(), key_, clock_,
                              {.auditor_public_key = "too short"});
  EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rec.status().message(), HasSubstr("s.rec"));
  struct stat st;
  EXPECT_NE(::stat(dir_.File("s.rec").c_str(), &st), 0);
}

TEST_F(RecorderTest, SealedOriginalsAreSplitAndDirectionChecked) {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  auto rec = *Recorder::Create(dir_.File("s.rec"), SampleOpen(), key_, clock_,
                               {.auditor_public_key = auditor.public_key()});
  EXPECT_EQ(rec->AppendSealed(v1::DIRECTION_UNSPECIFIED, "x").code(),
            absl::StatusCode::kInvalidArgument);
  const std::string big(kMaxPayloadBytes + 10, 'z');
  ASSERT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_AGENT, big).ok());
  v1::SessionClose close;
  ASSERT_TRUE(rec->Close(close).ok());
  EXPECT_EQ(VerifyRecording(Contents(), key_.public_key()).verdict, VerifyReport::kValid);
  Recording r = ReadRecording(Contents());
  ASSERT_EQ(r.records.size(), 5u);
  auto u = *UnsealingStream::Create(auditor, r.records[0].open().sealed_originals_key());
  std::string joined;
  for (int i : {1, 2}) {
    const v1::SealedData& d = r.records[i].sealed();
    joined += *u->Open(d.counter(), d.ciphertext(), SealedDataAad("sess-0001", i));
  }
  EXPECT_EQ(joined, big);
  EXPECT_EQ(r.records[1].sealed().ciphertext().size(), kMaxPayloadBytes + kSealTagBytes);
}

// ---- a shared descriptor cache (RecorderOptions.files) ----

TEST_F(RecorderTest, RecordingsInASharedCacheVerifyAfterEvictions) {
  FileCache files(1);
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 3; ++i) {
    auto rec = Recorder::Create(dir_.File(absl::StrCat(i, ".rec")),
                                SampleOpen(absl::StrCat("sess-", i)), key_, clock_,
                                {.files = &files});
    ASSERT_TRUE(rec.ok()) << rec.status();
    recs.push_back(*std::move(rec));
  }
  EXPECT_EQ(files.open_count(), 1u);
  // Each flush takes the descriptor from another recorder: every write is a reopen.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(recs[i]->AppendData(v1::DIRECTION_TO_UPSTREAM, absl::StrCat("q", round)).ok());
      ASSERT_TRUE(recs[i]->AppendData(v1::DIRECTION_TO_AGENT, absl::StrCat("a", round)).ok());
      ASSERT_TRUE(recs[i]->Flush().ok()) << recs[i]->status();
    }
  }
  EXPECT_GE(files.reopens(), 12u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(recs[i]->Close(v1::SessionClose()).ok());
  EXPECT_EQ(files.open_count(), 0u);
  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat(i, ".rec");
    const VerifyReport report = VerifyRecording(Contents(name), key_.public_key());
    EXPECT_EQ(report.verdict, VerifyReport::kValid) << report.detail;
    EXPECT_EQ(report.records_ok, 11u);  // open, 8 data, close, seal
    EXPECT_EQ(report.session_id, absl::StrCat("sess-", i));
  }
}

TEST_F(RecorderTest, FailedReopenIsStickyAndLeavesAnIncompleteRecording) {
  FileCache files(1);
  auto a = *Recorder::Create(dir_.File("a.rec"), SampleOpen("sess-a"), key_, clock_,
                             {.files = &files});
  auto b = *Recorder::Create(dir_.File("b.rec"), SampleOpen("sess-b"), key_, clock_,
                             {.files = &files});  // evicts a's descriptor
  // a's file is moved away while a is idle: its next write cannot reach it.
  ASSERT_EQ(::rename(dir_.File("a.rec").c_str(), dir_.File("moved.rec").c_str()), 0);
  ASSERT_TRUE(a->AppendData(v1::DIRECTION_TO_UPSTREAM, "x").ok());  // buffered
  const absl::Status st = a->Flush();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("record: reopen " + dir_.File("a.rec")));
  EXPECT_EQ(a->status(), st);
  EXPECT_EQ(a->AppendEvent("k", "d"), st);
  EXPECT_EQ(a->Close(v1::SessionClose()), st);
  // b goes on undisturbed; what a wrote before verifies as cut short, never as valid.
  ASSERT_TRUE(b->AppendData(v1::DIRECTION_TO_AGENT, "y").ok());
  ASSERT_TRUE(b->Close(v1::SessionClose()).ok());
  EXPECT_EQ(VerifyRecording(Contents("b.rec"), key_.public_key()).verdict, VerifyReport::kValid);
  const VerifyReport report = VerifyRecording(Contents("moved.rec"), key_.public_key());
  EXPECT_EQ(report.verdict, VerifyReport::kIncomplete) << report.detail;
  EXPECT_EQ(report.records_ok, 1u);
}

TEST_F(RecorderTest, WithoutASharedCacheTheRecorderKeepsItsDescriptor) {
  auto rec = MakeRecorder();
  // Its own cache of one: never evicted, so the file stays reachable even when renamed.
  ASSERT_EQ(::rename(dir_.File("s.rec").c_str(), dir_.File("t.rec").c_str()), 0);
  ASSERT_TRUE(rec->AppendData(v1::DIRECTION_TO_UPSTREAM, "x").ok());
  ASSERT_TRUE(rec->Close(v1::SessionClose()).ok());
  EXPECT_EQ(VerifyRecording(Contents("t.rec"), key_.public_key()).verdict, VerifyReport::kValid);
}

}  // namespace
}  // namespace interlock::record
