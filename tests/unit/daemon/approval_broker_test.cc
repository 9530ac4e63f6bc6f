// ApprovalBroker: holds decided by another identity, timeouts and grant expiry on a fake
// clock, windows, restart expiry, and the pure self-approval rule. A real event loop and
// a real SQLite file in a temp dir; no sockets.
#include "userspace/daemon/approval_broker.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"

namespace interlock::daemon {
namespace {

using ::testing::HasSubstr;

class MemorySink final : public audit::AuditSink {
 public:
  explicit MemorySink(std::vector<v1::AuditEvent>* out) : out_(out) {}
  absl::Status Write(const v1::AuditEvent& e) override {
    out_->push_back(e);
    return absl::OkStatus();
  }

 private:
  std::vector<v1::AuditEvent>* out_;
};

v1::WorkloadIdentity Agent() {
  v1::WorkloadIdentity w;
  w.set_workload("billing-agent");
  w.set_uid(1001);
  w.set_cgroup_id(77);
  w.set_cgroup_path("/interlock/workloads/billing-agent");
  return w;
}

v1::Approver Human(uint32_t uid = 0) {
  v1::Approver a;
  a.set_uid(uid);
  a.set_user("ops");
  a.set_cgroup_id(5);
  a.set_cgroup_path("/user.slice/user-0.slice/session-1.scope");
  return a;
}

TEST(CheckApprover, RefusesTheRequesterItself) {
  EXPECT_TRUE(CheckApprover(Human(), Agent(), false).ok());
  v1::Approver inside = Human();
  inside.set_cgroup_path("/interlock/workloads/billing-agent");
  EXPECT_TRUE(absl::IsPermissionDenied(CheckApprover(inside, Agent(), false)));
  inside.set_cgroup_path("/interlock/workloads/billing-agent/sub");
  EXPECT_TRUE(absl::IsPermissionDenied(CheckApprover(inside, Agent(), false)));
  v1::Approver same_id = Human();
  same_id.set_cgroup_id(77);
  EXPECT_TRUE(absl::IsPermissionDenied(CheckApprover(same_id, Agent(), false)));
  // A sibling whose path merely starts with the same characters is someone else.
  v1::Approver sibling = Human();
  sibling.set_cgroup_path("/interlock/workloads/billing-agent2");
  EXPECT_TRUE(CheckApprover(sibling, Agent(), false).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckApprover(Human(1001), Agent(), false)));
  EXPECT_TRUE(CheckApprover(Human(1001), Agent(), /*allow_same_uid=*/true).ok());
}

// The workload the grants below are for: enrolled by uid 1001, a process running as 1002.
GrantSubject AgentSubject() {
  GrantSubject s;
  s.uids = {1001, 1002};
  s.cgroup_paths = {"/interlock/workloads/billing-agent.1"};
  return s;
}

TEST(CheckGranter, RefusesTheWorkloadItself) {
  EXPECT_TRUE(CheckGranter(Human(0), "billing-agent", AgentSubject(), false).ok());
  for (uint32_t uid : {1001u, 1002u}) {
    absl::Status s = CheckGranter(Human(uid), "billing-agent", AgentSubject(), false);
    EXPECT_TRUE(absl::IsPermissionDenied(s));
    EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("operator uid ", uid, " is a uid workload billing-agent runs as")));
    EXPECT_THAT(std::string(s.message()), HasSubstr("approvals.allow_same_uid"));
    EXPECT_TRUE(CheckGranter(Human(uid), "billing-agent", AgentSubject(), /*allow_same_uid=*/true).ok());
  }
  v1::Approver inside = Human(0);
  inside.set_cgroup_path("/interlock/workloads/billing-agent.1/sub");
  EXPECT_TRUE(absl::IsPermissionDenied(CheckGranter(inside, "billing-agent", AgentSubject(), true)));
  inside.set_cgroup_path("/interlock/workloads/billing-agent.10");  // a sibling
  EXPECT_TRUE(CheckGranter(inside, "billing-agent", AgentSubject(), false).ok());
  // Nothing known about the workload (not enrolled now): only the uid of the operator
  // could match, and nothing does.
  EXPECT_TRUE(CheckGranter(Human(1001), "billing-agent", {}, false).ok());
}

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("interlock-broker-");
    auto loop = net::EventLoop::Create(clock_);
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    audit_ = std::make_unique<audit::AuditLog>(std::make_unique<MemorySink>(&events_), clock_);
    Open();
  }
  void TearDown() override {
    broker_.reset();
    testing::RemoveTree(dir_);
  }
  void Open() {
    broker_.reset();
    ApprovalBrokerOptions o;
    o.db_path = dir_ + "/approvals.db";
    o.host = "test";
    o.approvals.max_window_s = 3600;
    auto b = ApprovalBroker::Create(o, loop_.get(), audit_.get(), &clock_);
    ASSERT_TRUE(b.ok()) << b.status();
    broker_ = std::move(*b);
  }
  v1::ApprovalRequest Request(const std::string& fingerprint = "abcd") {
    v1::ApprovalRequest r;
    *r.mutable_requester() = Agent();
    r.set_resource("bank-db");
    r.set_statement("DELETE FROM customers");
    r.set_fingerprint(fingerprint);
    r.set_rule_id("review-unfiltered-writes");
    return r;
  }
  // Runs the loop until `done` is set (callbacks are posted to the loop).
  void RunUntil(const std::optional<v1::ApprovalRequest>& done) {
    loop_->RunAfter(absl::ZeroDuration(), [&] { Poll(done); });
    ASSERT_TRUE(loop_->Run().ok());
  }
  void Poll(const std::optional<v1::ApprovalRequest>& done) {
    if (done.has_value() || ++polls_ > 1000) {
      loop_->Stop();
      return;
    }
    loop_->RunAfter(absl::ZeroDuration(), [&] { Poll(done); });
  }
  int Count(const std::string& outcome) {
    int n = 0;
    for (const auto& e : events_) n += e.outcome() == outcome;
    return n;
  }

  std::string dir_;
  testing::FakeClock clock_;
  std::unique_ptr<net::EventLoop> loop_;
  std::vector<v1::AuditEvent> events_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<ApprovalBroker> broker_;
  int polls_ = 0;
};

TEST_F(BrokerTest, ApproveReleasesOnceAndOnlyForAnotherIdentity) {
  std::optional<v1::ApprovalRequest> done;
  auto r = broker_->Submit(Request(), absl::Minutes(5), [&](const v1::ApprovalRequest& d) { done = d; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::APPROVAL_STATE_PENDING);
  EXPECT_THAT(r->id(), ::testing::StartsWith("apr-"));
  auto self = broker_->Decide(r->id(), true, Human(1001), "", absl::ZeroDuration());
  EXPECT_TRUE(absl::IsPermissionDenied(self.status()));
  EXPECT_EQ(Count("approver_refused"), 1);
  auto ok = broker_->Decide(r->id(), true, Human(), "ticket 1", absl::ZeroDuration());
  ASSERT_TRUE(ok.ok()) << ok.status();
  RunUntil(done);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->state(), v1::APPROVAL_STATE_APPROVED);
  EXPECT_EQ(done->approver().user(), "ops");
  auto again = broker_->Decide(r->id(), false, Human(), "changed my mind", absl::ZeroDuration());
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status()));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already approved"));
}

TEST_F(BrokerTest, DenyNeedsAReason) {
  auto r = broker_->Submit(Request(), absl::Minutes(5), [](const v1::ApprovalRequest&) {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(broker_->Decide(r->id(), false, Human(), "", absl::ZeroDuration()).status()));
  EXPECT_TRUE(broker_->Decide(r->id(), false, Human(), "no", absl::ZeroDuration()).ok());
}

TEST_F(BrokerTest, TimeoutDeniesOnTheFakeClock) {
  std::optional<v1::ApprovalRequest> done;
  auto r = broker_->Submit(Request(), absl::Minutes(5), [&](const v1::ApprovalRequest& d) { done = d; });
  ASSERT_TRUE(r.ok());
  clock_.Advance(absl::Minutes(4));
  RunUntil(done);
  EXPECT_FALSE(done.has_value());
  polls_ = 0;
  clock_.Advance(absl::Minutes(1));
  RunUntil(done);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->state(), v1::APPROVAL_STATE_TIMED_OUT);
}

TEST_F(BrokerTest, WindowLetsTheSameShapeThroughUntilItCloses) {
  auto r = broker_->Submit(Request("ffff"), absl::Minutes(5), [](const v1::ApprovalRequest&) {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      broker_->Decide(r->id(), true, Human(), "", absl::Hours(2)).status()));  // over max_window_s
  ASSERT_TRUE(broker_->Decide(r->id(), true, Human(), "", absl::Minutes(15)).ok());
  auto second = broker_->Submit(Request("ffff"), absl::Minutes(5), [](const v1::ApprovalRequest&) {});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->state(), v1::APPROVAL_STATE_APPROVED);
  auto other = broker_->Submit(Request("eeee"), absl::Minutes(5), [](const v1::ApprovalRequest&) {});
  EXPECT_EQ(other->state(), v1::APPROVAL_STATE_PENDING);
  clock_.Advance(absl::Minutes(16));
  auto late = broker_->Submit(Request("ffff"), absl::Minutes(5), [](const v1::ApprovalRequest&) {});
  EXPECT_EQ(late->state(), v1::APPROVAL_STATE_PENDING);
}

TEST_F(BrokerTest, AbandonedAndRestartedRequestsExpireNeverApprove) {
  bool called = false;
  auto a = broker_->Submit(Request(), absl::Minutes(5), [&](const v1::ApprovalRequest&) { called = true; });
  auto b = broker_->Submit(Request(), absl::Minutes(5), [&](const v1::ApprovalRequest&) { called = true; });
  ASSERT_TRUE(a.ok() && b.ok());
  broker_->Abandon(a->id(), "the held connection ended before a decision");
  EXPECT_TRUE(absl::IsFailedPrecondition(broker_->Decide(a->id(), true, Human(), "", absl::ZeroDuration()).status()));
  Open();  // a restart with `b` still pending
  auto list = broker_->List(/*all=*/true, 10);
  ASSERT_TRUE(list.ok());
  for (const auto& r : *list) EXPECT_EQ(r.state(), v1::APPROVAL_STATE_EXPIRED) << r.id();
  EXPECT_TRUE(absl::IsFailedPrecondition(broker_->Decide(b->id(), true, Human(), "", absl::ZeroDuration()).status()));
  EXPECT_FALSE(called);
}

TEST_F(BrokerTest, GrantsExpireAndRevokeWithACallback) {
  std::vector<std::string> ended;
  broker_->OnGrantEnded([&](const v1::Grant& g, const std::string& why) { ended.push_back(g.id() + " " + why); });
  EXPECT_FALSE(broker_->ActiveGrant("billing-agent", "bank-db").has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(
      broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(15), "", Human()).status()));
  auto g = broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(15), "INC-7", Human());
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(broker_->ActiveGrant("billing-agent", "bank-db").has_value());
  EXPECT_FALSE(broker_->ActiveGrant("other", "bank-db").has_value());
  auto g2 = broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(30), "INC-8", Human());
  ASSERT_TRUE(g2.ok());
  ASSERT_TRUE(broker_->RevokeGrant(g2->id(), Human()).ok());
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_THAT(ended[0], HasSubstr("revoked"));
  clock_.Advance(absl::Minutes(15));
  std::optional<v1::ApprovalRequest> never;
  RunUntil(never);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_THAT(ended[1], HasSubstr(g->id() + " grant " + g->id() + " expired"));
  EXPECT_FALSE(broker_->ActiveGrant("billing-agent", "bank-db").has_value());
}

TEST_F(BrokerTest, SelfGrantIsRefusedAuditedAndNotStored) {
  auto refused = broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(15), "need it", Human(1002),
                                      AgentSubject());
  ASSERT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_FALSE(broker_->ActiveGrant("billing-agent", "bank-db").has_value());
  auto all = broker_->ListGrants(/*all=*/true);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  ASSERT_EQ(Count("granter_refused"), 1);
  for (const auto& e : events_) {
    if (e.outcome() != "granter_refused") continue;
    EXPECT_EQ(e.kind(), v1::AUDIT_KIND_GRANT);
    EXPECT_EQ(e.grant().granted_by().uid(), 1002u);
    EXPECT_EQ(e.grant().granted_by().user(), "ops");
    EXPECT_THAT(e.detail(), HasSubstr("operator uid 1002"));
  }
  // Another user may; the grant and its audit event name them.
  auto g = broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(15), "INC-9", Human(0), AgentSubject());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->granted_by().user(), "ops");
  EXPECT_EQ(broker_->ActiveGrant("billing-agent", "bank-db")->granted_by().uid(), 0u);
  ASSERT_EQ(Count("granted"), 1);
  for (const auto& e : events_) {
    if (e.outcome() == "granted") {
      EXPECT_EQ(e.grant().granted_by().user(), "ops");
    }
  }
}

TEST_F(BrokerTest, SelfGrantAllowedWithAllowSameUid) {
  broker_.reset();
  ApprovalBrokerOptions o;
  o.db_path = dir_ + "/approvals.db";
  o.approvals.allow_same_uid = true;
  auto b = ApprovalBroker::Create(o, loop_.get(), audit_.get(), &clock_);
  ASSERT_TRUE(b.ok()) << b.status();
  broker_ = std::move(*b);
  EXPECT_TRUE(
      broker_->CreateGrant("billing-agent", "bank-db", absl::Minutes(15), "solo", Human(1001), AgentSubject()).ok());
}

}  // namespace
}  // namespace interlock::daemon
