// FlushList: the engine writes only the sessions that recorded something since the last
// batch, and a destroyed session is never on the list.
#include "userspace/proxy/core/session.h"

#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/clock.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A session with nothing but a recorder: what the engine's flush needs of a real one.
class RecordingSession : public ProxySession {
 public:
  explicit RecordingSession(std::unique_ptr<record::Recorder> recorder) : recorder_(std::move(recorder)) {
    FollowRecorder(recorder_.get());
  }
  void Abort(const std::string&, const std::string&) override {}
  absl::Status FlushRecording() override {
    ++flushes;
    return recorder_->Flush();
  }
  const RelayStats& stats() const override { return stats_; }
  bool done() const override { return false; }
  const std::string& outcome() const override { return none_; }
  const std::string& detail() const override { return none_; }
  absl::Duration last_activity() const override { return absl::ZeroDuration(); }
  record::Recorder& rec() { return *recorder_; }
  void Mark() { MarkForFlush(); }

  int flushes = 0;

 private:
  std::unique_ptr<record::Recorder> recorder_;
  RelayStats stats_;
  std::string none_;
};

class FlushListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/session_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& p : files_) ::unlink(p.c_str());
    ::rmdir(dir_.c_str());
  }
  std::unique_ptr<RecordingSession> NewSession() {
    std::string path = absl::StrCat(dir_, "/", files_.size(), ".rec");
    files_.push_back(path);
    v1::SessionOpen open;
    open.set_session_id(absl::StrCat("s", files_.size()));
    auto rec = record::Recorder::Create(path, open, key_, RealClock::Get());
    if (!rec.ok()) ADD_FAILURE() << rec.status();
    return std::make_unique<RecordingSession>(*std::move(rec));
  }

  std::string dir_;
  std::vector<std::string> files_;
  record::RecordingKey key_ = record::RecordingKey::Generate();
};

TEST_F(FlushListTest, OnlySessionsThatRecordedSomethingAreTakenOnceEach) {
  FlushList list;
  auto idle = NewSession();
  auto busy = NewSession();
  idle->JoinFlushList(&list);
  busy->JoinFlushList(&list);
  EXPECT_THAT(list.Take(), IsEmpty()) << "record 0 is on disk at creation: nothing to write";

  ASSERT_TRUE(busy->rec().AppendData(v1::DIRECTION_TO_UPSTREAM, "a").ok());
  ASSERT_TRUE(busy->rec().AppendData(v1::DIRECTION_TO_AGENT, "b").ok());
  ASSERT_TRUE(busy->rec().AppendEvent("agent_half_close", "").ok());
  std::vector<ProxySession*> taken = list.Take();
  ASSERT_THAT(taken, ElementsAre(busy.get()));
  EXPECT_THAT(list.Take(), IsEmpty()) << "taking unmarks";
  ASSERT_TRUE(taken[0]->FlushRecording().ok());
  EXPECT_EQ(busy->rec().buffered_bytes(), 0u);

  // Written, and marked again by the next record after the flush.
  ASSERT_TRUE(busy->rec().AppendData(v1::DIRECTION_TO_UPSTREAM, "d").ok());
  ASSERT_TRUE(idle->rec().AppendData(v1::DIRECTION_TO_UPSTREAM, "e").ok());
  EXPECT_THAT(list.Take(), ElementsAre(busy.get(), idle.get()));
}

TEST_F(FlushListTest, ASessionThatRecordedBeforeJoiningIsOnTheListWhenItJoins) {
  FlushList list;
  auto s = NewSession();
  ASSERT_TRUE(s->rec().AppendData(v1::DIRECTION_TO_UPSTREAM, "before the engine knew it").ok());
  EXPECT_EQ(list.size(), 0u);
  s->JoinFlushList(&list);
  EXPECT_THAT(list.Take(), ElementsAre(s.get()));
}

TEST_F(FlushListTest, ADestroyedSessionLeavesTheList) {
  FlushList list;
  auto gone = NewSession();
  auto kept = NewSession();
  gone->JoinFlushList(&list);
  kept->JoinFlushList(&list);
  gone->Mark();
  kept->Mark();
  gone.reset();
  EXPECT_THAT(list.Take(), ElementsAre(kept.get()));
}

TEST_F(FlushListTest, ASessionMayMarkItselfAgainWhileItIsFlushed) {
  FlushList list;
  auto s = NewSession();
  s->JoinFlushList(&list);
  s->Mark();
  for (ProxySession* taken : list.Take()) {
    ASSERT_TRUE(taken->FlushRecording().ok());
    static_cast<RecordingSession*>(taken)->Mark();  // as SshSession does, every batch
  }
  EXPECT_THAT(list.Take(), ElementsAre(s.get()));
}

}  // namespace
}  // namespace interlock::proxy
