// The behaviours every ApprovalStore (userspace/approval/store.h) must have, as
// value-parameterised tests over a factory of fresh, empty stores. Each implementation's
// test instantiates them:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, ApprovalStoreConformance,
//                            ::testing::Values(StoreFactory{"sqlite", [] { ... }}), FactoryName);
//
// Included by exactly one test source per binary.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "userspace/approval/store.h"

namespace interlock::approval::conformance {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1767225600LL * 1000000;  // 2026-01-01, Unix µs
constexpr int64_t kSecond = 1000000;

inline v1::ApprovalRequest Request(const std::string& id, int64_t created_us,
                                   const std::string& workload = "billing-agent",
                                   const std::string& resource = "orders-db",
                                   const std::string& fingerprint = "fp-delete-customers") {
  v1::ApprovalRequest r;
  r.set_id(id);
  r.set_state(v1::APPROVAL_STATE_PENDING);
  r.set_created_us(created_us);
  r.set_deadline_us(created_us + 300 * kSecond);
  r.set_session_id("sess-" + id);
  r.mutable_requester()->set_workload(workload);
  r.mutable_requester()->set_cgroup_id(4242);
  r.mutable_requester()->set_pid(1234);
  r.set_token_subject("agent@example.com");
  r.set_resource(resource);
  r.set_database("orders");
  r.set_db_user("app");
  r.set_statement("DELETE FROM customers");
  r.set_statement_sha256(std::string(64, 'a'));
  r.set_fingerprint(fingerprint);
  r.set_rule_id("no-unbounded-delete");
  r.set_reason("unbounded delete");
  r.set_classification("DELETE customers (no WHERE)");
  return r;
}

inline v1::Approver Alice() {
  v1::Approver a;
  a.set_uid(1000);
  a.set_user("alice");
  a.set_pid(777);
  return a;
}

inline v1::Grant Grant(const std::string& id, int64_t created_us, int64_t expires_us,
                       const std::string& workload = "billing-agent", const std::string& resource = "orders-db") {
  v1::Grant g;
  g.set_id(id);
  g.set_workload(workload);
  g.set_resource(resource);
  g.set_created_us(created_us);
  g.set_expires_us(expires_us);
  g.set_reason("incident 42");
  *g.mutable_granted_by() = Alice();
  return g;
}

inline std::vector<std::string> Ids(const std::vector<v1::ApprovalRequest>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id());
  return out;
}

inline std::vector<std::string> GrantIds(const std::vector<v1::Grant>& gs) {
  std::vector<std::string> out;
  for (const auto& g : gs) out.push_back(g.id());
  return out;
}

// Makes a fresh, empty store for one test; nullptr (having recorded a failure) when it
// cannot.
struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<ApprovalStore>()> open;
};

inline std::string FactoryName(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

class ApprovalStoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  std::unique_ptr<ApprovalStore> OpenStore() { return GetParam().open(); }
};

TEST_P(ApprovalStoreConformance, RoundTripsARequest) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::ApprovalRequest r = Request("apr-0000000000000001", kT0);
  ASSERT_TRUE(store->InsertRequest(r).ok());
  auto got = store->GetRequest("apr-0000000000000001");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, r)) << got->DebugString();
}

TEST_P(ApprovalStoreConformance, UnknownRequestIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetRequest("apr-nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Resolve("apr-nope", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0, 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(ApprovalStoreConformance, DuplicateIdIsAlreadyExists) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-dup", kT0)).ok());
  absl::Status st = store->InsertRequest(Request("apr-dup", kT0 + kSecond));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(st.message(), HasSubstr("apr-dup"));
  // The first one is untouched.
  EXPECT_EQ(store->GetRequest("apr-dup")->created_us(), kT0);
}

TEST_P(ApprovalStoreConformance, EmptyIdIsInvalid) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->InsertRequest(Request("", kT0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->InsertGrant(Grant("", kT0, kT0 + 1)).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(ApprovalStoreConformance, NonUtf8StringFieldIsRefusedNotStoredUnreadable) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::ApprovalRequest r = Request("apr-latin1", kT0);
  r.set_statement("SELECT '\xe9t\xe9'");  // Latin-1, not UTF-8
  EXPECT_EQ(store->InsertRequest(r).code(), absl::StatusCode::kInvalidArgument);
  // Listing still works: nothing unreadable went in.
  auto all = store->ListRequests(false, 10);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->empty());
}

TEST_P(ApprovalStoreConformance, ResolveApprovesOnceAndRecordsTheDecision) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-1", kT0)).ok());
  auto done = store->Resolve("apr-1", v1::APPROVAL_STATE_APPROVED, Alice(), "looks fine", kT0 + 10 * kSecond,
                             kT0 + 3600 * kSecond);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::APPROVAL_STATE_APPROVED);
  EXPECT_EQ(done->approver().user(), "alice");
  EXPECT_EQ(done->decision_reason(), "looks fine");
  EXPECT_EQ(done->decided_us(), kT0 + 10 * kSecond);
  EXPECT_EQ(done->window_until_us(), kT0 + 3600 * kSecond);
  auto got = store->GetRequest("apr-1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*got, *done));

  // A second decision, either way, is refused and changes nothing.
  auto again = store->Resolve("apr-1", v1::APPROVAL_STATE_DENIED, Alice(), "changed my mind", kT0 + 20 * kSecond, 0);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already approved"));
  EXPECT_EQ(store->GetRequest("apr-1")->state(), v1::APPROVAL_STATE_APPROVED);
}

TEST_P(ApprovalStoreConformance, ResolveDeniesTimesOutAndNamesThePriorState) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-d", kT0)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-t", kT0)).ok());
  ASSERT_TRUE(store->Resolve("apr-d", v1::APPROVAL_STATE_DENIED, Alice(), "no", kT0 + 1, 0).ok());
  ASSERT_TRUE(store->Resolve("apr-t", v1::APPROVAL_STATE_TIMED_OUT, v1::Approver(), "deadline", kT0 + 2, 0).ok());
  auto d = store->Resolve("apr-d", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 3, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(d.status().message(), HasSubstr("already denied"));
  auto t = store->Resolve("apr-t", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 3, 0);
  EXPECT_THAT(t.status().message(), HasSubstr("already timed out"));
}

TEST_P(ApprovalStoreConformance, ResolveRejectsNonDecisionsAndWindowsOnDenials) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-1", kT0)).ok());
  EXPECT_EQ(store->Resolve("apr-1", v1::APPROVAL_STATE_PENDING, Alice(), "", kT0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Resolve("apr-1", v1::APPROVAL_STATE_UNSPECIFIED, Alice(), "", kT0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Resolve("apr-1", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0, kT0 + kSecond).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetRequest("apr-1")->state(), v1::APPROVAL_STATE_PENDING);
}

TEST_P(ApprovalStoreConformance, ListsNewestFirstWithLimitAndPendingFilter) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Inserted out of order; two share a creation time (then insertion order decides).
  ASSERT_TRUE(store->InsertRequest(Request("apr-b", kT0 + 2 * kSecond)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-a", kT0 + 1 * kSecond)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-d", kT0 + 4 * kSecond)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-c", kT0 + 4 * kSecond)).ok());
  ASSERT_TRUE(store->Resolve("apr-d", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0, 0).ok());

  auto all = store->ListRequests(false, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Ids(*all), ElementsAre("apr-c", "apr-d", "apr-b", "apr-a"));
  auto two = store->ListRequests(false, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_THAT(Ids(*two), ElementsAre("apr-c", "apr-d"));
  auto pending = store->ListRequests(true, 100);
  ASSERT_TRUE(pending.ok());
  EXPECT_THAT(Ids(*pending), ElementsAre("apr-c", "apr-b", "apr-a"));
  auto pending1 = store->ListRequests(true, 1);
  ASSERT_TRUE(pending1.ok());
  EXPECT_THAT(Ids(*pending1), ElementsAre("apr-c"));
  EXPECT_EQ(store->ListRequests(false, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(ApprovalStoreConformance, WindowAllowsSameWorkloadResourceFingerprintUntilItEnds) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const int64_t until = kT0 + 3600 * kSecond;
  ASSERT_TRUE(store->InsertRequest(Request("apr-w", kT0, "billing-agent", "orders-db", "fp1")).ok());
  // Pending: no window yet.
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 1));
  ASSERT_TRUE(store->Resolve("apr-w", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 1, until).ok());

  EXPECT_TRUE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 2));
  EXPECT_TRUE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until - 1));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until));  // ended
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until + kSecond));
  EXPECT_FALSE(*store->WindowAllows("other-agent", "orders-db", "fp1", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp2", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "users-db", "fp1", kT0 + 2));
}

TEST_P(ApprovalStoreConformance, WindowNeverOpensForDenialsOrEmptyKeys) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-d", kT0, "billing-agent", "orders-db", "fp1")).ok());
  ASSERT_TRUE(store->Resolve("apr-d", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0 + 1, 0).ok());
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 2));

  // An approval for an unenrolled client ("" workload) or an unfingerprinted statement
  // does not open a window for every other such client or statement.
  ASSERT_TRUE(store->InsertRequest(Request("apr-e1", kT0, "", "orders-db", "fp1")).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-e2", kT0, "billing-agent", "orders-db", "")).ok());
  for (const char* id : {"apr-e1", "apr-e2"}) {
    ASSERT_TRUE(store->Resolve(id, v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 1, kT0 + 3600 * kSecond).ok());
  }
  EXPECT_FALSE(*store->WindowAllows("", "orders-db", "fp1", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "", kT0 + 2));
}

TEST_P(ApprovalStoreConformance, GrantsRoundTripAndListActive) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Grant g = Grant("grt-1", kT0, kT0 + 3600 * kSecond);
  ASSERT_TRUE(store->InsertGrant(g).ok());
  auto got = store->GetGrant("grt-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, g));
  EXPECT_EQ(store->InsertGrant(g).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->GetGrant("grt-none").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store->InsertGrant(Grant("grt-old", kT0 - 7200 * kSecond, kT0 - 3600 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-2", kT0 + kSecond, kT0 + 60 * kSecond)).ok());
  ASSERT_TRUE(store->Revoke("grt-2", Alice(), kT0 + 2 * kSecond).ok());

  auto all = store->ListGrants(false, kT0 + 3 * kSecond);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(GrantIds(*all), ElementsAre("grt-2", "grt-1", "grt-old"));
  auto active = store->ListGrants(true, kT0 + 3 * kSecond);
  ASSERT_TRUE(active.ok());
  EXPECT_THAT(GrantIds(*active), ElementsAre("grt-1"));
}

// Issue 12 item 10: who created a grant is part of it, in every read path and after a
// reopen.
TEST_P(ApprovalStoreConformance, ActiveGrantHonoursExpiryRevocationAndPicksLatestExpiry) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto none = store->ActiveGrant("billing-agent", "orders-db", kT0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store->InsertGrant(Grant("grt-short", kT0, kT0 + 60 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-long", kT0, kT0 + 600 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-mid", kT0 + 1, kT0 + 300 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-other", kT0, kT0 + 9000 * kSecond, "other-agent")).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-otherdb", kT0, kT0 + 9000 * kSecond, "billing-agent", "x")).ok());

  auto g = store->ActiveGrant("billing-agent", "orders-db", kT0 + kSecond);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->id(), "grt-long");

  // Revoking the latest falls back to the next one still running.
  auto revoked = store->Revoke("grt-long", Alice(), kT0 + 2 * kSecond);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_us(), kT0 + 2 * kSecond);
  EXPECT_EQ(revoked->revoked_by().user(), "alice");
  EXPECT_EQ((*store->ActiveGrant("billing-agent", "orders-db", kT0 + 3 * kSecond))->id(), "grt-mid");
  // Expiry is exclusive: at expires_us the grant is over.
  EXPECT_EQ((*store->ActiveGrant("billing-agent", "orders-db", kT0 + 300 * kSecond - 1))->id(), "grt-mid");
  EXPECT_FALSE(store->ActiveGrant("billing-agent", "orders-db", kT0 + 300 * kSecond)->has_value());
}

TEST_P(ApprovalStoreConformance, RevokeRefusesRevokedExpiredAndUnknown) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertGrant(Grant("grt-1", kT0, kT0 + 60 * kSecond)).ok());
  ASSERT_TRUE(store->Revoke("grt-1", Alice(), kT0 + 1).ok());
  auto twice = store->Revoke("grt-1", Alice(), kT0 + 2);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(twice.status().message(), HasSubstr("already revoked"));
  EXPECT_EQ(store->GetGrant("grt-1")->revoked_us(), kT0 + 1);

  ASSERT_TRUE(store->InsertGrant(Grant("grt-2", kT0, kT0 + 60 * kSecond)).ok());
  auto expired = store->Revoke("grt-2", Alice(), kT0 + 60 * kSecond);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(expired.status().message(), HasSubstr("already expired"));
  EXPECT_EQ(store->Revoke("grt-none", Alice(), kT0).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ApprovalStoreConformance, SqlLookingTextIsStoredVerbatim) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string id = "apr-'; DROP TABLE requests; --";
  const std::string reason = "Robert'); DELETE FROM grants WHERE ('1'='1";
  v1::ApprovalRequest r = Request(id, kT0, "w\" OR 1=1 --", "orders-db", "fp' OR '1'='1");
  ASSERT_TRUE(store->InsertRequest(r).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-1", kT0, kT0 + 3600 * kSecond)).ok());
  auto done = store->Resolve(id, v1::APPROVAL_STATE_APPROVED, Alice(), reason, kT0 + 1, kT0 + 100);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->decision_reason(), reason);

  auto got = store->GetRequest(id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id(), id);
  EXPECT_EQ(got->decision_reason(), reason);
  EXPECT_EQ(got->requester().workload(), "w\" OR 1=1 --");
  // Quotes match only themselves.
  EXPECT_TRUE(*store->WindowAllows("w\" OR 1=1 --", "orders-db", "fp' OR '1'='1", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("w\" OR 1=1 --", "orders-db", "' OR '1'='1", kT0 + 2));
  EXPECT_EQ(store->GetRequest("apr-' OR '1'='1").status().code(), absl::StatusCode::kNotFound);
  // Both tables are still there and intact.
  EXPECT_EQ(store->ListRequests(false, 10)->size(), 1u);
  EXPECT_EQ(store->ListGrants(false, kT0)->size(), 1u);
}

}  // namespace interlock::approval::conformance
