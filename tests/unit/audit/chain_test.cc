// The audit chain as an attacker who can edit files sees it: the sink writes a chain
// (rotating, checkpointing, recovering after a crash), the verifier must catch every edit
// and name the first broken line.
#include "userspace/audit/chain.h"

#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
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
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/file_util.h"
#include "userspace/common/sha256.h"
#include "userspace/record/recorder.h"
#include "userspace/record/verifier.h"

namespace interlock::audit {
namespace {

using ::testing::HasSubstr;

v1::AuditEvent Event(int i) {
  v1::AuditEvent ev;
  ev.set_id(absl::StrCat("id-", i));
  ev.set_kind(v1::AUDIT_KIND_STATEMENT);
  ev.set_time(absl::StrCat("2026-01-01T00:00:00.", 100000000 + i, "Z"));
  ev.set_session_id("sess-1");
  ev.set_resource("orders-db");
  ev.set_outcome("ok");
  ev.set_detail(absl::StrCat("statement number ", i, " with \"quotes\" and text"));
  return ev;
}

v1::AuditEvent Parse(absl::string_view line) {
  v1::AuditEvent ev;
  google::protobuf::util::JsonParseOptions o;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &ev, o).ok()) << line;
  return ev;
}

class AuditChainTest : public ::testing::Test {
 protected:
  AuditChainTest() {
    std::string tmpl = "/tmp/audit_chain_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
    path_ = dir_ + "/audit/audit.jsonl";
  }
  ~AuditChainTest() override {
    ::nftw(
        dir_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }

  JsonLinesSinkOptions Options() {
    JsonLinesSinkOptions o;
    o.path = path_;
    o.key = &key_;
    return o;
  }
  std::unique_ptr<JsonLinesSink> Sink(JsonLinesSinkOptions o) {
    auto s = JsonLinesSink::Create(std::move(o), clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<JsonLinesSink> Sink() { return Sink(Options()); }

  // The audit directory's files in verification order (rotated by seq, then the live one).
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    if (DIR* d = ::opendir((dir_ + "/audit").c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (absl::StartsWith(e->d_name, "audit.jsonl")) out.push_back(dir_ + "/audit/" + e->d_name);
      }
      ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return SortAuditFiles(out);
  }
  std::vector<AuditFileBytes> Load() {
    std::vector<AuditFileBytes> out;
    for (const std::string& p : Files()) {
      auto text = ReadFile(p);
      EXPECT_TRUE(text.ok());
      out.push_back({p.substr(p.rfind('/') + 1), text.ok() ? *text : ""});
    }
    return out;
  }
  ChainReport Verify(const std::vector<AuditFileBytes>& files) {
    return VerifyAuditChain(files, key_.public_key());
  }
  // Writes `n` events through a sink that rotates every ~2 KiB and shuts down cleanly.
  void WriteRotatingChain(int n) {
    JsonLinesSinkOptions o = Options();
    o.rotate_bytes = 2048;
    auto sink = Sink(o);
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(sink->Write(Event(i)).ok());
      if (i % 3 == 0) {
        ASSERT_TRUE(sink->Flush().ok());
      }
      clock_.Advance(absl::Seconds(1));
    }
    ASSERT_TRUE(sink->Checkpoint("shutdown").ok());
    ASSERT_TRUE(sink->Flush().ok());
  }

  static std::vector<std::string> Lines(const std::string& bytes) {
    std::vector<std::string> out = absl::StrSplit(bytes, '\n');
    if (!out.empty() && out.back().empty()) out.pop_back();
    for (auto& l : out) l.push_back('\n');
    return out;
  }
  static std::string Join(const std::vector<std::string>& lines) { return absl::StrJoin(lines, ""); }

  std::string dir_, path_;
  record::RecordingKey key_ = record::RecordingKey::Generate();
  interlock::testing::FakeClock clock_;
};

// ---------------------------------------------------------------------------------------
// The sink writes the chain.

TEST_F(AuditChainTest, EveryLineCarriesSeqAndTheHashOfTheLineBefore) {
  auto sink = Sink();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sink->Write(Event(i)).ok());
  ASSERT_TRUE(sink->Flush().ok());
  auto lines = Lines(*ReadFile(path_));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Parse(lines[0]).seq(), 1u);
  EXPECT_EQ(Parse(lines[0]).prev_sha256(), GenesisHash());
  EXPECT_EQ(GenesisHash(), std::string(64, '0'));
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(Parse(lines[i]).seq(), i + 1);
    EXPECT_EQ(Parse(lines[i]).prev_sha256(), Sha256Hex(lines[i - 1]));  // exact bytes, '\n' included
  }
  EXPECT_EQ(sink->last_seq(), 3u);
  EXPECT_EQ(sink->head_sha256(), Sha256Hex(lines[2]));
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  EXPECT_EQ(r.lines, 3u);
  EXPECT_EQ(r.first_seq, 1u);
}

TEST_F(AuditChainTest, TheEventsFieldsAreOverriddenNotTrusted) {
  auto sink = Sink();
  v1::AuditEvent ev = Event(0);
  ev.set_seq(99);
  ev.set_prev_sha256("forged");
  ASSERT_TRUE(sink->Write(ev).ok());
  ASSERT_TRUE(sink->Flush().ok());
  v1::AuditEvent got = Parse(Lines(*ReadFile(path_))[0]);
  EXPECT_EQ(got.seq(), 1u);
  EXPECT_EQ(got.prev_sha256(), GenesisHash());
}

TEST_F(AuditChainTest, ChainContinuesAfterReopen) {
  {
    auto sink = Sink();
    ASSERT_TRUE(sink->Write(Event(0)).ok());
    ASSERT_TRUE(sink->Write(Event(1)).ok());
  }  // destructor flushes
  auto sink = Sink();
  EXPECT_EQ(sink->last_seq(), 2u);
  ASSERT_TRUE(sink->Write(Event(2)).ok());
  ASSERT_TRUE(sink->Flush().ok());
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  EXPECT_EQ(r.last_seq, 3u);
}

TEST_F(AuditChainTest, CheckpointIsSignedAndLast) {
  auto sink = Sink();
  ASSERT_TRUE(sink->Checkpoint("shutdown").ok());
  ASSERT_TRUE(sink->Flush().ok());
  EXPECT_EQ(*ReadFile(path_), "") << "nothing to sign yet";
  ASSERT_TRUE(sink->Write(Event(0)).ok());
  ASSERT_TRUE(sink->Checkpoint("shutdown").ok());
  ASSERT_TRUE(sink->Checkpoint("shutdown").ok());  // nothing new: not written twice
  ASSERT_TRUE(sink->Flush().ok());
  auto lines = Lines(*ReadFile(path_));
  ASSERT_EQ(lines.size(), 2u);
  v1::AuditEvent c = Parse(lines[1]);
  EXPECT_EQ(c.kind(), v1::AUDIT_KIND_AUDIT_CHECKPOINT);
  EXPECT_EQ(c.checkpoint().reason(), "shutdown");
  EXPECT_EQ(c.checkpoint().key_fingerprint(), key_.Fingerprint());
  EXPECT_TRUE(key_.public_key().Verify(CheckpointMessage(2, Sha256Hex(lines[0]), c.time(), "shutdown"),
                                       c.checkpoint().signature()));
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.detail;
  EXPECT_EQ(r.checkpoints, 1u);
  EXPECT_EQ(r.last_checkpoint_seq, 2u);
}

TEST_F(AuditChainTest, IntervalCheckpointsOnlyWhenLinesWereWritten) {
  JsonLinesSinkOptions o = Options();
  o.checkpoint_interval = absl::Seconds(60);
  auto sink = Sink(o);
  ASSERT_TRUE(sink->Write(Event(0)).ok());
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE(sink->Tick().ok());
  EXPECT_EQ(sink->last_seq(), 1u) << "not due yet";
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(sink->Tick().ok());
  EXPECT_EQ(sink->last_seq(), 2u) << "checkpoint";
  clock_.Advance(absl::Seconds(120));
  ASSERT_TRUE(sink->Tick().ok());
  EXPECT_EQ(sink->last_seq(), 2u) << "idle: no checkpoint of a checkpoint";
  ASSERT_TRUE(sink->Flush().ok());
  auto lines = Lines(*ReadFile(path_));
  EXPECT_EQ(Parse(lines[1]).checkpoint().reason(), "interval");
}

TEST_F(AuditChainTest, RotatesBySizeWithACheckpointAndTheChainGoesOn) {
  WriteRotatingChain(40);
  std::vector<std::string> files = Files();
  ASSERT_GE(files.size(), 3u);
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    const std::string name = files[i].substr(files[i].rfind('/') + 1);
    auto suffix = ParseRotatedName("audit.jsonl", name);
    ASSERT_TRUE(suffix.has_value()) << name;
    auto lines = Lines(*ReadFile(files[i]));
    v1::AuditEvent last = Parse(lines.back());
    EXPECT_EQ(last.kind(), v1::AUDIT_KIND_AUDIT_CHECKPOINT) << name;
    EXPECT_EQ(last.checkpoint().reason(), "rotate");
    EXPECT_EQ(last.seq(), suffix->last_seq) << "the name carries the seq of the last line";
    struct stat st;
    ASSERT_EQ(::stat(files[i].c_str(), &st), 0);
    EXPECT_LT(static_cast<uint64_t>(st.st_size), 2048u + 1024u);
  }
  EXPECT_EQ(files.back(), path_);
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_GE(r.checkpoints, files.size());
  EXPECT_EQ(r.last_checkpoint_seq, r.last_seq) << "clean shutdown signs the end";
}

TEST_F(AuditChainTest, RotatesByAge) {
  JsonLinesSinkOptions o = Options();
  o.rotate_age = absl::Hours(1);
  o.checkpoint_interval = absl::ZeroDuration();
  auto sink = Sink(o);
  ASSERT_TRUE(sink->Tick().ok());
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(sink->Tick().ok());
  EXPECT_EQ(Files().size(), 1u) << "an empty file is not rotated";
  ASSERT_TRUE(sink->Write(Event(0)).ok());
  clock_.Advance(absl::Minutes(59));
  ASSERT_TRUE(sink->Tick().ok());
  EXPECT_EQ(Files().size(), 1u);
  clock_.Advance(absl::Minutes(62));
  ASSERT_TRUE(sink->Tick().ok());
  ASSERT_EQ(Files().size(), 2u);
  EXPECT_EQ(*ReadFile(path_), "");
  // FakeClock starts at 2026-01-01T00:00:00Z; the rotation happened 4h01m later.
  EXPECT_EQ(Files()[0], dir_ + "/audit/audit.jsonl.20260101T040100Z.2");
}

TEST_F(AuditChainTest, RetentionKeepsTheNewestFilesAndTheRestStillVerifies) {
  JsonLinesSinkOptions o = Options();
  o.rotate_bytes = 2048;
  o.retain_files = 2;
  auto sink = Sink(o);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(sink->Write(Event(i)).ok());
  ASSERT_TRUE(sink->Flush().ok());
  ASSERT_EQ(Files().size(), 3u) << "two rotated + the live file";
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  EXPECT_GT(r.first_seq, 1u);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_THAT(r.notes[0], HasSubstr("starts at seq"));
}

TEST_F(AuditChainTest, RetentionByAge) {
  JsonLinesSinkOptions o = Options();
  o.retain_age = absl::Hours(24);
  auto sink = Sink(o);
  ASSERT_TRUE(sink->Write(Event(0)).ok());
  ASSERT_TRUE(sink->Rotate().ok());
  clock_.Advance(absl::Hours(23));
  ASSERT_TRUE(sink->Write(Event(1)).ok());
  ASSERT_TRUE(sink->Rotate().ok());
  EXPECT_EQ(Files().size(), 3u);
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(sink->Write(Event(2)).ok());
  ASSERT_TRUE(sink->Rotate().ok());
  EXPECT_EQ(Files().size(), 3u) << "the first rotated file is 25h old: deleted";
}

TEST_F(AuditChainTest, GroupReadableMode) {
  JsonLinesSinkOptions o = Options();
  o.group = ::getgid();
  auto sink = Sink(o);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_gid, ::getgid());
  ASSERT_EQ(::stat((dir_ + "/audit").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(AuditChainTest, CrashInsideAWriteIsSetAsideAndTheChainGoesOnFromTheLastWholeLine) {
  {
    auto sink = Sink();
    ASSERT_TRUE(sink->Write(Event(0)).ok());
    ASSERT_TRUE(sink->Write(Event(1)).ok());
  }
  {
    // A crash inside write(2): part of a third line.
    std::string bytes = *ReadFile(path_);
    bytes += EventToJsonLine(Event(2)).substr(0, 30);
    ASSERT_TRUE(WriteFileAtomic(path_, bytes, 0600).ok());
  }
  auto sink = Sink();
  EXPECT_EQ(sink->last_seq(), 2u);
  ASSERT_TRUE(sink->Write(Event(3)).ok());
  ASSERT_TRUE(sink->Flush().ok());
  ASSERT_EQ(Files().size(), 2u);
  EXPECT_EQ(Files()[0], dir_ + "/audit/audit.jsonl.20260101T000000Z.2");
  ChainReport r = Verify(Load());
  EXPECT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  EXPECT_EQ(r.last_seq, 3u);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_THAT(absl::StrJoin(r.notes, "\n"), HasSubstr("partial line"));
}

TEST_F(AuditChainTest, AFileFromBeforeChainingIsSetAsideAndANewChainStarts) {
  ASSERT_TRUE(MakeDirs(dir_ + "/audit", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(path_, EventToJsonLine(Event(0)), 0600).ok());
  auto sink = Sink();
  EXPECT_EQ(sink->last_seq(), 0u);
  ASSERT_TRUE(sink->Write(Event(1)).ok());
  ASSERT_TRUE(sink->Flush().ok());
  ASSERT_EQ(Files().size(), 2u);
  EXPECT_EQ(Parse(*ReadFile(path_)).seq(), 1u);
}

TEST_F(AuditChainTest, RotatedNamesParseAndSortBySeq) {
  EXPECT_EQ(RotatedName("audit.jsonl", absl::FromUnixSeconds(1767225600), 42),
            "audit.jsonl.20260101T000000Z.42");
  auto s = ParseRotatedName("audit.jsonl", "audit.jsonl.20260101T000000Z.42");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->last_seq, 42u);
  EXPECT_EQ(s->rotated_at, absl::FromUnixSeconds(1767225600));
  EXPECT_FALSE(ParseRotatedName("audit.jsonl", "audit.jsonl").has_value());
  EXPECT_FALSE(ParseRotatedName("audit.jsonl", "audit.jsonl.20260101T000000Z.").has_value());
  EXPECT_FALSE(ParseRotatedName("audit.jsonl", "audit.jsonl.bak.42").has_value());
  EXPECT_FALSE(ParseRotatedName("audit.jsonl", "other.jsonl.20260101T000000Z.42").has_value());
  std::vector<std::string> sorted = SortAuditFiles({"/a/audit.jsonl", "/a/audit.jsonl.20260102T000000Z.100",
                                                    "/a/audit.jsonl.20260101T000000Z.9"});
  EXPECT_EQ(sorted, (std::vector<std::string>{"/a/audit.jsonl.20260101T000000Z.9",
                                              "/a/audit.jsonl.20260102T000000Z.100", "/a/audit.jsonl"}));
}

// ---------------------------------------------------------------------------------------
// Mutations: what an attacker who can edit the files might do.

class AuditChainMutationTest : public AuditChainTest {
 protected:
  void SetUp() override {
    WriteRotatingChain(40);
    files_ = Load();
    ASSERT_GE(files_.size(), 3u);
    ChainReport r = Verify(files_);
    ASSERT_EQ(r.verdict, ChainReport::kValid) << r.where << ": " << r.detail;
  }
  std::string Where(size_t file, size_t line) { return absl::StrCat(files_[file].name, ":", line); }
  std::vector<AuditFileBytes> files_;
};

TEST_F(AuditChainMutationTest, EveryByteFlipOfALineIsCaughtAtThatLine) {
  // The second line of the middle file (neither checkpoint nor first line).
  auto lines = Lines(files_[1].bytes);
  const std::string original = lines[1];
  // The link's key and value: an edit there breaks the link to the line before.
  const size_t prev_at = original.find("\"prev_sha256\":\"");
  int caught = 0;
  for (size_t i = 0; i + 1 < original.size(); ++i) {  // not the '\n'
    for (unsigned char mask : {0x01, 0x20}) {
      std::vector<AuditFileBytes> files = files_;
      lines[1] = original;
      lines[1][i] = static_cast<char>(lines[1][i] ^ mask);
      if (lines[1][i] == '\n') continue;
      files[1].bytes = Join(lines);
      ChainReport r = Verify(files);
      ASSERT_EQ(r.verdict, ChainReport::kTampered) << "byte " << i << " mask " << int(mask);
      if (i >= prev_at && i < prev_at + 15 + 64 + 1) {
        // This line's link edited: indistinguishable from an edit of the line before.
        EXPECT_THAT(r.where, ::testing::AnyOf(Where(1, 1), Where(1, 2))) << "byte " << i;
      } else {
        EXPECT_EQ(r.where, Where(1, 2)) << "byte " << i << ": " << r.detail;
      }
      ++caught;
    }
  }
  EXPECT_GT(caught, 100);
}

TEST_F(AuditChainMutationTest, EditedValueIsNamedAsAHashMismatch) {
  auto lines = Lines(files_[0].bytes);
  size_t at = lines[2].find("statement number");
  ASSERT_NE(at, std::string::npos);
  lines[2].replace(at, 9, "STATEMENT");
  files_[0].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(0, 3));
  EXPECT_THAT(r.detail, HasSubstr("hash mismatch"));
}

TEST_F(AuditChainMutationTest, DroppedLine) {
  auto lines = Lines(files_[1].bytes);
  lines.erase(lines.begin() + 2);
  files_[1].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 3));
  EXPECT_THAT(r.detail, HasSubstr("missing"));
}

TEST_F(AuditChainMutationTest, TwoLinesSwapped) {
  auto lines = Lines(files_[1].bytes);
  std::swap(lines[2], lines[3]);
  files_[1].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 3));
}

TEST_F(AuditChainMutationTest, RepeatedLine) {
  auto lines = Lines(files_[1].bytes);
  lines.insert(lines.begin() + 2, lines[1]);
  files_[1].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 3));
  EXPECT_THAT(r.detail, HasSubstr("reordered or repeated"));
}

TEST_F(AuditChainMutationTest, RotatedFileRemovedFromTheMiddle) {
  files_.erase(files_.begin() + 1);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 1));
  EXPECT_THAT(r.detail, HasSubstr("missing"));
}

TEST_F(AuditChainMutationTest, RotatedFileTruncatedAtALineBoundary) {
  auto lines = Lines(files_[1].bytes);
  lines.resize(lines.size() - 2);  // the rotation checkpoint and one line before it
  files_[1].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(2, 1));
}

TEST_F(AuditChainMutationTest, RotatedFileCutInsideALine) {
  files_[1].bytes.resize(files_[1].bytes.size() - 10);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered) << "the next file chains to a line that is not whole";
  EXPECT_EQ(r.where, Where(2, 1));
}

TEST_F(AuditChainMutationTest, LastFileCutInsideALineIsIncompleteNotValid) {
  std::string& last = files_.back().bytes;
  const size_t lines = Lines(last).size();
  last.resize(last.size() - 10);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kIncomplete);
  EXPECT_EQ(r.where, Where(files_.size() - 1, lines));
  EXPECT_THAT(r.detail, HasSubstr("partial last line"));
}

TEST_F(AuditChainMutationTest, LastFileCutAtALineBoundaryLeavesTheTailUnsigned) {
  // Undetectable without a copy elsewhere; the report says how much is signed.
  auto lines = Lines(files_.back().bytes);
  lines.pop_back();  // the shutdown checkpoint
  files_.back().bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kValid);
  EXPECT_LT(r.last_checkpoint_seq, r.last_seq);
  EXPECT_THAT(absl::StrJoin(r.notes, "\n"), HasSubstr("not yet signed"));
}

TEST_F(AuditChainMutationTest, FilesInTheWrongOrder) {
  std::swap(files_[0], files_[1]);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 1));
}

TEST_F(AuditChainMutationTest, ForgedCheckpointSignature) {
  auto lines = Lines(files_[0].bytes);
  v1::AuditEvent c = Parse(lines.back());
  ASSERT_EQ(c.kind(), v1::AUDIT_KIND_AUDIT_CHECKPOINT);
  // Signed by another key but claiming ours.
  record::RecordingKey other = record::RecordingKey::Generate();
  std::string sig = *other.Sign(CheckpointMessage(c.seq(), c.prev_sha256(), c.time(), c.checkpoint().reason()));
  c.mutable_checkpoint()->set_signature(sig);
  lines.back() = EventToJsonLine(c);
  files_[0].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(0, lines.size()));
  EXPECT_THAT(r.detail, HasSubstr("bad signature"));
}

TEST_F(AuditChainMutationTest, CheckpointFromAnotherKey) {
  ChainReport r = VerifyAuditChain(files_, record::RecordingKey::Generate().public_key());
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("signed by key"));
}

TEST_F(AuditChainMutationTest, CheckpointReasonOrTimeEdited) {
  auto lines = Lines(files_.back().bytes);
  std::string& last = lines.back();
  size_t at = last.find("\"shutdown\"");
  ASSERT_NE(at, std::string::npos);
  last.replace(at, 10, "\"rotate\"");
  files_.back().bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(files_.size() - 1, lines.size()));
}

TEST_F(AuditChainMutationTest, RechainingAfterAnEditBreaksTheNextCheckpoint) {
  // The attacker edits line 3 and recomputes every later link (no key needed for that).
  std::vector<std::string> all;
  std::vector<size_t> file_of;
  for (size_t f = 0; f < files_.size(); ++f) {
    for (auto& l : Lines(files_[f].bytes)) {
      all.push_back(l);
      file_of.push_back(f);
    }
  }
  size_t at = all[2].find("statement number");
  all[2].replace(at, 9, "STATEMENT");
  for (size_t i = 3; i < all.size(); ++i) {
    v1::AuditEvent ev = Parse(all[i]);
    ev.set_prev_sha256(Sha256Hex(all[i - 1]));
    all[i] = EventToJsonLine(ev);
  }
  for (auto& f : files_) f.bytes.clear();
  for (size_t i = 0; i < all.size(); ++i) files_[file_of[i]].bytes += all[i];
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(0, Lines(files_[0].bytes).size())) << "the first file's rotation checkpoint";
  EXPECT_THAT(r.detail, HasSubstr("bad signature"));
}

TEST_F(AuditChainMutationTest, FirstFilesRemovedIsReportedNotHidden) {
  files_.erase(files_.begin());
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kValid);
  EXPECT_GT(r.first_seq, 1u);
  EXPECT_THAT(absl::StrJoin(r.notes, "\n"), HasSubstr("starts at seq"));
}

TEST_F(AuditChainMutationTest, GenesisForged) {
  auto lines = Lines(files_[0].bytes);
  v1::AuditEvent ev = Parse(lines[0]);
  ev.set_prev_sha256(std::string(64, 'f'));
  lines[0] = EventToJsonLine(ev);
  files_[0].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(0, 1));
}

TEST_F(AuditChainMutationTest, GarbageAndUnchainedLines) {
  auto lines = Lines(files_[1].bytes);
  lines.insert(lines.begin() + 1, "not json\n");
  files_[1].bytes = Join(lines);
  ChainReport r = Verify(files_);
  EXPECT_EQ(r.verdict, ChainReport::kTampered);
  EXPECT_EQ(r.where, Where(1, 2));
  lines[1] = EventToJsonLine(Event(7));  // valid JSON, no seq
  files_[1].bytes = Join(lines);
  r = Verify(files_);
  EXPECT_EQ(r.where, Where(1, 2));
  EXPECT_THAT(r.detail, HasSubstr("no seq"));
}

// ---------------------------------------------------------------------------------------
// Recordings against their session-end event.

class RecordingCrossCheckTest : public AuditChainTest {
 protected:
  // A recorded session closed cleanly, and what its session end says.
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(dir_ + "/rec", 0700).ok());
    rec_path_ = dir_ + "/rec/s1.rec";
    v1::SessionOpen open;
    open.set_session_id("s1");
    auto rec = record::Recorder::Create(rec_path_, open, key_, clock_);
    ASSERT_TRUE(rec.ok()) << rec.status();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "SELECT 1").ok());
    ASSERT_TRUE((*rec)->Close(v1::SessionClose()).ok());
    summary_.set_file("s1.rec");
    summary_.set_records((*rec)->records());
    summary_.set_head_sha256(HexEncode((*rec)->head_hash()));
    summary_.set_sealed(true);
  }
  record::VerifyReport VerifyRec() { return record::VerifyRecording(*ReadFile(rec_path_), key_.public_key()); }
  std::string rec_path_;
  v1::RecordingSummary summary_;
};

TEST_F(RecordingCrossCheckTest, IntactRecordingAgrees) {
  record::VerifyReport r = VerifyRec();
  ASSERT_EQ(r.verdict, record::VerifyReport::kValid);
  EXPECT_EQ(r.records_ok, summary_.records());
  EXPECT_EQ(CrossCheckRecording(summary_, &r), std::nullopt);
}

TEST_F(RecordingCrossCheckTest, TruncatedAfterACleanCloseIsTamperedNotIncomplete) {
  std::string bytes = *ReadFile(rec_path_);
  for (size_t cut : {size_t{1}, size_t{40}, bytes.size() / 2}) {
    ASSERT_TRUE(WriteFileAtomic(rec_path_, bytes.substr(0, bytes.size() - cut), 0600).ok());
    record::VerifyReport r = VerifyRec();
    EXPECT_NE(r.verdict, record::VerifyReport::kValid);
    auto why = CrossCheckRecording(summary_, &r);
    ASSERT_TRUE(why.has_value()) << "cut " << cut;
    EXPECT_THAT(*why, HasSubstr("after the clean close"));
  }
}

TEST_F(RecordingCrossCheckTest, MissingRecordingIsTampered) {
  auto why = CrossCheckRecording(summary_, nullptr);
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("missing"));
}

TEST_F(RecordingCrossCheckTest, AnotherValidRecordingInItsPlaceIsTampered) {
  v1::RecordingSummary other = summary_;
  other.set_head_sha256(std::string(64, 'a'));
  record::VerifyReport r = VerifyRec();
  auto why = CrossCheckRecording(other, &r);
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("chain head"));
}

}  // namespace
}  // namespace interlock::audit
