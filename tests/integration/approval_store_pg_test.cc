// PostgresApprovalStore against a real PostgreSQL 15 (started by the test on loopback):
// every store behaviour (store_conformance.h), then what sharing adds — two instances
// hearing each other's changes, a request decided exactly once when instances race, a
// store that goes away failing fast and closed and coming back by itself, and a schema
// from a newer interlockd refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/privileged.h"
#include "tests/unit/approval/store_conformance.h"
#include "userspace/approval/postgres_store.h"
#include "userspace/common/clock.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"

namespace interlock::approval {
namespace {

using conformance::Alice;
using conformance::ApprovalStoreConformance;
using conformance::Grant;
using conformance::kSecond;
using conformance::kT0;
using conformance::Request;
using ::testing::HasSubstr;
using testing::PostgresOptions;
using testing::PostgresServer;

constexpr char kPassword[] = "store-test-secret";

// One server for the whole binary (stopped and removed after the last test); a fresh
// database per store factory call or test.
std::unique_ptr<PostgresServer>& ServerSlot() {
  static std::unique_ptr<PostgresServer> server;
  return server;
}

PostgresServer* Server() {
  std::unique_ptr<PostgresServer>& s = ServerSlot();
  if (s == nullptr) {
    s = std::make_unique<PostgresServer>(PostgresOptions{.address = "127.0.0.63"});
    absl::Status st = s->Start();
    EXPECT_TRUE(st.ok()) << st << s->Log();
    auto role = s->Psql(absl::StrCat("CREATE ROLE interlock LOGIN PASSWORD '", kPassword, "'"));
    EXPECT_TRUE(role.ok()) << role.status();
  }
  return s.get();
}

class ServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { ServerSlot().reset(); }
};
[[maybe_unused]] const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

std::string NewDatabase() {
  static int n = 0;
  std::string name = absl::StrCat("store_", ::getpid(), "_", ++n);
  auto st = Server()->Psql(absl::StrCat("CREATE DATABASE ", name, " OWNER interlock"));
  EXPECT_TRUE(st.ok()) << st.status();
  return name;
}

std::string Url(const std::string& db) {
  return absl::StrCat("postgres://interlock@", Server()->address(), ":", Server()->port(), "/", db);
}

PostgresStoreOptions Options(const std::string& db) {
  PostgresStoreOptions o;
  o.url = Url(db);
  o.password = kPassword;
  o.timeout = absl::Seconds(2);
  o.retry_after = absl::Milliseconds(300);
  return o;
}

INSTANTIATE_TEST_SUITE_P(Postgres, ApprovalStoreConformance,
                         ::testing::Values(conformance::StoreFactory{
                             "postgres",
                             []() -> std::unique_ptr<ApprovalStore> {
                               EXPECT_EQ(::geteuid(), 0u) << "a privileged test: run it as root";
                               auto store = PostgresApprovalStore::Open(Options(NewDatabase()), nullptr);
                               EXPECT_TRUE(store.ok()) << store.status();
                               if (!store.ok()) return nullptr;
                               EXPECT_TRUE((*store)->connected()) << (*store)->Describe();
                               return std::unique_ptr<ApprovalStore>(std::move(*store));
                             }}),
                         conformance::FactoryName);

// Two instances on their own event loops (one thread here: each loop is run in turn).
class SharedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    db_ = NewDatabase();
    auto la = net::EventLoop::Create(RealClock::Get());
    auto lb = net::EventLoop::Create(RealClock::Get());
    ASSERT_TRUE(la.ok() && lb.ok());
    loop_a_ = std::move(*la);
    loop_b_ = std::move(*lb);
    auto a = PostgresApprovalStore::Open(Options(db_), loop_a_.get());
    auto b = PostgresApprovalStore::Open(Options(db_), loop_b_.get());
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    a_ = std::move(*a);
    b_ = std::move(*b);
    ASSERT_TRUE(a_->connected()) << a_->Describe();
    a_->OnChange([this](const StoreChange& c) {
      heard_a_.push_back(c);
      loop_a_->Stop();
    });
    b_->OnChange([this](const StoreChange& c) {
      heard_b_.push_back(c);
      loop_b_->Stop();
    });
  }

  // Runs `loop` until a change is heard or `limit` passes.
  static void RunFor(net::EventLoop* loop, absl::Duration limit) {
    auto t = loop->RunAfter(limit, [loop] { loop->Stop(); });
    ASSERT_TRUE(loop->Run().ok());
    loop->Cancel(t);
  }

  std::string db_;
  std::unique_ptr<net::EventLoop> loop_a_, loop_b_;
  std::unique_ptr<PostgresApprovalStore> a_, b_;
  std::vector<StoreChange> heard_a_, heard_b_;
};

TEST_F(SharedStoreTest, ADecisionOnOneInstanceIsHeardByTheOther) {
  v1::ApprovalRequest r = Request("apr-shared-1", kT0);
  r.set_host("host-a");
  ASSERT_TRUE(a_->InsertRequest(r).ok());
  // B (another host) sees it and decides it.
  auto seen = b_->GetRequest("apr-shared-1");
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->host(), "host-a");
  v1::Approver bob = Alice();
  bob.set_host("host-b");
  absl::Time sent = absl::Now();
  auto done = b_->Resolve("apr-shared-1", v1::APPROVAL_STATE_APPROVED, bob, "ok", kT0 + 1, 0);
  ASSERT_TRUE(done.ok()) << done.status();
  RunFor(loop_a_.get(), absl::Seconds(5));
  ASSERT_EQ(heard_a_.size(), 1u);
  EXPECT_EQ(heard_a_[0].kind, StoreChange::Kind::kRequest);
  EXPECT_EQ(heard_a_[0].id, "apr-shared-1");
  std::printf("decision heard by the holder %.2f ms after it was sent\n",
              absl::ToDoubleMilliseconds(absl::Now() - sent));
  auto now = a_->GetRequest("apr-shared-1");
  EXPECT_EQ(now->state(), v1::APPROVAL_STATE_APPROVED);
  EXPECT_EQ(now->approver().host(), "host-b");
  // The holder's own timeout, late, loses: the approval stands.
  auto late = a_->Resolve("apr-shared-1", v1::APPROVAL_STATE_TIMED_OUT, v1::Approver(), "deadline", kT0 + 2, 0);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("already approved"));
  // B does not hear its own change.
  RunFor(loop_b_.get(), absl::Milliseconds(200));
  EXPECT_TRUE(heard_b_.empty());
}

TEST_F(SharedStoreTest, GrantsAndRevocationsAreHeard) {
  ASSERT_TRUE(b_->InsertGrant(Grant("grt-shared", kT0, kT0 + 3600 * kSecond)).ok());
  RunFor(loop_a_.get(), absl::Seconds(5));
  ASSERT_EQ(heard_a_.size(), 1u);
  EXPECT_EQ(heard_a_[0].kind, StoreChange::Kind::kGrant);
  EXPECT_EQ(heard_a_[0].id, "grt-shared");
  EXPECT_EQ((*a_->ActiveGrant("billing-agent", "orders-db", kT0 + 1))->id(), "grt-shared");
  heard_a_.clear();
  ASSERT_TRUE(b_->Revoke("grt-shared", Alice(), kT0 + 5).ok());
  RunFor(loop_a_.get(), absl::Seconds(5));
  ASSERT_EQ(heard_a_.size(), 1u);
  EXPECT_EQ(heard_a_[0].id, "grt-shared");
  EXPECT_FALSE(a_->ActiveGrant("billing-agent", "orders-db", kT0 + 6)->has_value());
  // Revoking again from A: exactly once.
  EXPECT_EQ(a_->Revoke("grt-shared", Alice(), kT0 + 7).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Instances racing to decide the same requests (threads, each with its own connection):
// every request is decided exactly once, and the stored decision is the winner's.
TEST_F(SharedStoreTest, RacingInstancesDecideEachRequestExactlyOnce) {
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(a_->InsertRequest(Request(absl::StrCat("apr-race-", i), kT0 + i)).ok());
  }
  std::atomic<int> wins[2] = {0, 0};
  std::vector<std::vector<std::string>> won(2);
  auto racer = [&](int who) {
    auto store = PostgresApprovalStore::Open(Options(db_), nullptr);
    ASSERT_TRUE(store.ok()) << store.status();
    v1::Approver me = Alice();
    me.set_host(absl::StrCat("racer-", who));
    for (int i = 0; i < kRequests; ++i) {
      auto r = (*store)->Resolve(absl::StrCat("apr-race-", i),
                                 who == 0 ? v1::APPROVAL_STATE_APPROVED : v1::APPROVAL_STATE_DENIED, me, "race",
                                 kT0 + 100, 0);
      if (r.ok()) {
        ++wins[who];
        won[who].push_back(r->id());
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
      }
    }
  };
  std::thread t0(racer, 0), t1(racer, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(wins[0] + wins[1], kRequests);
  for (int who = 0; who < 2; ++who) {
    for (const std::string& id : won[who]) {
      auto r = a_->GetRequest(id);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->state(), who == 0 ? v1::APPROVAL_STATE_APPROVED : v1::APPROVAL_STATE_DENIED) << id;
      EXPECT_EQ(r->approver().host(), absl::StrCat("racer-", who));
    }
  }
}

// The store goes away: calls fail closed (UNAVAILABLE) within the timeout and then at
// once, nothing is approved meanwhile, and the instance reconnects by itself and says so.
TEST_F(SharedStoreTest, AStoreThatGoesAwayFailsFastAndComesBack) {
  ASSERT_TRUE(a_->InsertRequest(Request("apr-before", kT0)).ok());
  Server()->Stop();
  absl::Time t0 = absl::Now();
  auto first = a_->GetRequest("apr-before");
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3)) << "one call waits at most the timeout";
  absl::Time t1 = absl::Now();
  auto second = a_->Resolve("apr-before", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 1, 0);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - t1, absl::Milliseconds(100)) << "while backing off, calls fail at once";
  EXPECT_FALSE(a_->WindowAllows("billing-agent", "orders-db", "fp-delete-customers", kT0 + 2).ok());
  EXPECT_FALSE(a_->ActiveGrant("billing-agent", "orders-db", kT0 + 2).ok());
  EXPECT_THAT(a_->Describe(), HasSubstr("unavailable"));

  ASSERT_TRUE(Server()->Start().ok()) << Server()->Log();
  // The background reconnect (retry_after 300 ms) tells the owner to re-read.
  for (int i = 0; i < 20 && heard_a_.empty(); ++i) RunFor(loop_a_.get(), absl::Milliseconds(500));
  ASSERT_FALSE(heard_a_.empty()) << a_->Describe();
  EXPECT_EQ(heard_a_[0].kind, StoreChange::Kind::kReconnected);
  EXPECT_TRUE(a_->connected());
  auto after = a_->GetRequest("apr-before");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->state(), v1::APPROVAL_STATE_PENDING) << "nothing was decided while the store was away";
  // And notifications flow again on the new connection.
  heard_a_.clear();
  // (B finds its own connection dead at its first call, and reconnects after retry_after.)
  absl::Status granted;
  for (int i = 0; i < 50; ++i) {
    granted = b_->InsertGrant(Grant("grt-after", kT0, kT0 + 60 * kSecond));
    if (granted.ok()) break;
    EXPECT_EQ(granted.code(), absl::StatusCode::kUnavailable) << granted;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(granted.ok()) << granted;
  for (int i = 0; i < 10 && heard_a_.empty(); ++i) RunFor(loop_a_.get(), absl::Milliseconds(500));
  bool heard_grant = false;
  for (const StoreChange& c : heard_a_) heard_grant |= c.kind == StoreChange::Kind::kGrant && c.id == "grt-after";
  EXPECT_TRUE(heard_grant);
}

// A server that accepts the TCP connection but never answers (a hung store): Open
// returns within the timeout, unavailable, instead of hanging interlockd's start.
TEST(PostgresStoreTest, AHungServerCostsOneTimeout) {
  INTERLOCK_REQUIRE_ROOT();
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(0x7f00003f);  // 127.0.0.63
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  PostgresStoreOptions o;
  o.url = absl::StrCat("postgres://interlock@127.0.0.63:", ntohs(addr.sin_port), "/x");
  o.timeout = absl::Milliseconds(500);
  absl::Time t0 = absl::Now();
  auto store = PostgresApprovalStore::Open(o, nullptr);
  absl::Duration took = absl::Now() - t0;
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->connected());
  EXPECT_THAT((*store)->Describe(), HasSubstr("timed out"));
  EXPECT_LT(took, absl::Milliseconds(1500));
  EXPECT_EQ((*store)->GetRequest("apr-x").status().code(), absl::StatusCode::kUnavailable);
}

TEST(PostgresStoreTest, ASchemaFromANewerInterlockdIsRefused) {
  INTERLOCK_REQUIRE_ROOT();
  std::string db = NewDatabase();
  {
    auto store = PostgresApprovalStore::Open(Options(db), nullptr);
    ASSERT_TRUE(store.ok() && (*store)->connected()) << store.status();
  }
  ASSERT_TRUE(Server()->Psql("UPDATE interlock_store_meta SET schema_version = 99", db).ok());
  auto store = PostgresApprovalStore::Open(Options(db), nullptr);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
}

TEST(PostgresStoreTest, AWrongPasswordLeavesItUnavailableNeverOpen) {
  INTERLOCK_REQUIRE_ROOT();
  PostgresStoreOptions o = Options(NewDatabase());
  o.password = "wrong";
  auto store = PostgresApprovalStore::Open(o, nullptr);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->connected());
  EXPECT_THAT((*store)->Describe(), HasSubstr("password authentication failed"));
  EXPECT_THAT((*store)->Describe(), ::testing::Not(HasSubstr("wrong")));
  EXPECT_EQ((*store)->InsertRequest(Request("apr-1", kT0)).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace interlock::approval
