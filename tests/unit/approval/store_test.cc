#include "userspace/approval/store.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "userspace/common/file_util.h"

namespace interlock::approval {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1767225600LL * 1000000;  // 2026-01-01, Unix µs
constexpr int64_t kSecond = 1000000;

v1::ApprovalRequest Request(const std::string& id, int64_t created_us,
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

v1::Approver Alice() {
  v1::Approver a;
  a.set_uid(1000);
  a.set_user("alice");
  a.set_pid(777);
  return a;
}

v1::Grant Grant(const std::string& id, int64_t created_us, int64_t expires_us,
                const std::string& workload = "billing-agent",
                const std::string& resource = "orders-db") {
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

std::vector<std::string> Ids(const std::vector<v1::ApprovalRequest>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id());
  return out;
}

std::vector<std::string> GrantIds(const std::vector<v1::Grant>& gs) {
  std::vector<std::string> out;
  for (const auto& g : gs) out.push_back(g.id());
  return out;
}

class ApprovalStoreTest : public ::testing::Test {
 protected:
  ApprovalStoreTest() {
    std::string tmpl = "/tmp/approval_store_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
    path_ = dir_ + "/approvals.db";
  }
  ~ApprovalStoreTest() override {
    ::nftw(
        dir_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  std::unique_ptr<ApprovalStore> OpenStore() {
    auto store = ApprovalStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(ApprovalStoreTest, RoundTripsARequest) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::ApprovalRequest r = Request("apr-0000000000000001", kT0);
  ASSERT_TRUE(store->InsertRequest(r).ok());
  auto got = store->GetRequest("apr-0000000000000001");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, r)) << got->DebugString();
}

TEST_F(ApprovalStoreTest, UnknownRequestIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetRequest("apr-nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      store->Resolve("apr-nope", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0, 0).status().code(),
      absl::StatusCode::kNotFound);
}

TEST_F(ApprovalStoreTest, CreatesTheFileOwnerOnlyInWalMode) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-1", kT0)).ok());
  EXPECT_EQ(Mode(path_), 0600u);
  // WAL mode: the write went to the -wal file, which SQLite creates with the db's mode.
  EXPECT_EQ(Mode(path_ + "-wal"), 0600u);
}

TEST_F(ApprovalStoreTest, TightensAnExistingFileTo0600) {
  int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ::fchmod(fd, 0644);
  ::close(fd);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Mode(path_), 0600u);
}

TEST_F(ApprovalStoreTest, RefusesASymlink) {
  ASSERT_EQ(::symlink((dir_ + "/elsewhere.db").c_str(), path_.c_str()), 0);
  auto store = ApprovalStore::Open(path_);
  EXPECT_FALSE(store.ok());
}

TEST_F(ApprovalStoreTest, MissingDirectoryIsNotFound) {
  auto store = ApprovalStore::Open(dir_ + "/missing/approvals.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
}

TEST_F(ApprovalStoreTest, DuplicateIdIsAlreadyExists) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-dup", kT0)).ok());
  absl::Status st = store->InsertRequest(Request("apr-dup", kT0 + kSecond));
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_THAT(st.message(), HasSubstr("apr-dup"));
  // The first one is untouched.
  EXPECT_EQ(store->GetRequest("apr-dup")->created_us(), kT0);
}

TEST_F(ApprovalStoreTest, EmptyIdIsInvalid) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->InsertRequest(Request("", kT0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->InsertGrant(Grant("", kT0, kT0 + 1)).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApprovalStoreTest, NonUtf8StringFieldIsRefusedNotStoredUnreadable) {
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

TEST_F(ApprovalStoreTest, ResolveApprovesOnceAndRecordsTheDecision) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-1", kT0)).ok());
  auto done = store->Resolve("apr-1", v1::APPROVAL_STATE_APPROVED, Alice(), "looks fine",
                             kT0 + 10 * kSecond, kT0 + 3600 * kSecond);
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
  auto again = store->Resolve("apr-1", v1::APPROVAL_STATE_DENIED, Alice(), "changed my mind",
                              kT0 + 20 * kSecond, 0);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already approved"));
  EXPECT_EQ(store->GetRequest("apr-1")->state(), v1::APPROVAL_STATE_APPROVED);
}

TEST_F(ApprovalStoreTest, ResolveDeniesTimesOutAndNamesThePriorState) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-d", kT0)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-t", kT0)).ok());
  ASSERT_TRUE(store->Resolve("apr-d", v1::APPROVAL_STATE_DENIED, Alice(), "no", kT0 + 1, 0).ok());
  ASSERT_TRUE(
      store->Resolve("apr-t", v1::APPROVAL_STATE_TIMED_OUT, v1::Approver(), "deadline", kT0 + 2, 0)
          .ok());
  auto d = store->Resolve("apr-d", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 3, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(d.status().message(), HasSubstr("already denied"));
  auto t = store->Resolve("apr-t", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 3, 0);
  EXPECT_THAT(t.status().message(), HasSubstr("already timed out"));
}

TEST_F(ApprovalStoreTest, ResolveRejectsNonDecisionsAndWindowsOnDenials) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-1", kT0)).ok());
  EXPECT_EQ(
      store->Resolve("apr-1", v1::APPROVAL_STATE_PENDING, Alice(), "", kT0, 0).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store->Resolve("apr-1", v1::APPROVAL_STATE_UNSPECIFIED, Alice(), "", kT0, 0).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Resolve("apr-1", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0, kT0 + kSecond)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetRequest("apr-1")->state(), v1::APPROVAL_STATE_PENDING);
}

TEST_F(ApprovalStoreTest, ListsNewestFirstWithLimitAndPendingFilter) {
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

TEST_F(ApprovalStoreTest, ExpireAllPendingExpiresOnlyPendingAndNeverApproves) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertRequest(Request("apr-p1", kT0)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-p2", kT0 + 1)).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-ok", kT0 + 2)).ok());
  ASSERT_TRUE(store
                  ->Resolve("apr-ok", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 3,
                            kT0 + 100 * kSecond)
                  .ok());

  auto n = store->ExpireAllPending(kT0 + 50, "interlockd restarted");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  for (const char* id : {"apr-p1", "apr-p2"}) {
    auto r = store->GetRequest(id);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->state(), v1::APPROVAL_STATE_EXPIRED) << id;
    EXPECT_EQ(r->decided_us(), kT0 + 50);
    EXPECT_EQ(r->decision_reason(), "interlockd restarted");
    EXPECT_EQ(r->window_until_us(), 0);
  }
  auto ok = store->GetRequest("apr-ok");
  EXPECT_EQ(ok->state(), v1::APPROVAL_STATE_APPROVED);
  EXPECT_EQ(ok->decided_us(), kT0 + 3);
  // Expired requests cannot be approved afterwards.
  auto late = store->Resolve("apr-p1", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 60, 0);
  EXPECT_THAT(late.status().message(), HasSubstr("already expired"));
  EXPECT_EQ(*store->ExpireAllPending(kT0 + 70, "again"), 0);
  EXPECT_TRUE(store->ListRequests(true, 10)->empty());
}

TEST_F(ApprovalStoreTest, WindowAllowsSameWorkloadResourceFingerprintUntilItEnds) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const int64_t until = kT0 + 3600 * kSecond;
  ASSERT_TRUE(
      store->InsertRequest(Request("apr-w", kT0, "billing-agent", "orders-db", "fp1")).ok());
  // Pending: no window yet.
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 1));
  ASSERT_TRUE(
      store->Resolve("apr-w", v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 1, until).ok());

  EXPECT_TRUE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 2));
  EXPECT_TRUE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until - 1));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until));  // ended
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", until + kSecond));
  EXPECT_FALSE(*store->WindowAllows("other-agent", "orders-db", "fp1", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp2", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "users-db", "fp1", kT0 + 2));
}

TEST_F(ApprovalStoreTest, WindowNeverOpensForDenialsOrEmptyKeys) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->InsertRequest(Request("apr-d", kT0, "billing-agent", "orders-db", "fp1")).ok());
  ASSERT_TRUE(store->Resolve("apr-d", v1::APPROVAL_STATE_DENIED, Alice(), "", kT0 + 1, 0).ok());
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "fp1", kT0 + 2));

  // An approval for an unenrolled client ("" workload) or an unfingerprinted statement
  // does not open a window for every other such client or statement.
  ASSERT_TRUE(store->InsertRequest(Request("apr-e1", kT0, "", "orders-db", "fp1")).ok());
  ASSERT_TRUE(store->InsertRequest(Request("apr-e2", kT0, "billing-agent", "orders-db", "")).ok());
  for (const char* id : {"apr-e1", "apr-e2"}) {
    ASSERT_TRUE(
        store->Resolve(id, v1::APPROVAL_STATE_APPROVED, Alice(), "", kT0 + 1, kT0 + 3600 * kSecond)
            .ok());
  }
  EXPECT_FALSE(*store->WindowAllows("", "orders-db", "fp1", kT0 + 2));
  EXPECT_FALSE(*store->WindowAllows("billing-agent", "orders-db", "", kT0 + 2));
}

TEST_F(ApprovalStoreTest, GrantsRoundTripAndListActive) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Grant g = Grant("grt-1", kT0, kT0 + 3600 * kSecond);
  ASSERT_TRUE(store->InsertGrant(g).ok());
  auto got = store->GetGrant("grt-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, g));
  EXPECT_EQ(store->InsertGrant(g).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->GetGrant("grt-none").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(
      store->InsertGrant(Grant("grt-old", kT0 - 7200 * kSecond, kT0 - 3600 * kSecond)).ok());
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
TEST_F(ApprovalStoreTest, GrantRecordsItsOperator) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->InsertGrant(Grant("grt-op", kT0, kT0 + 60 * kSecond)).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto got = store->GetGrant("grt-op");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->granted_by().uid(), 1000u);
  EXPECT_EQ(got->granted_by().user(), "alice");
  EXPECT_EQ(got->granted_by().pid(), 777u);
  auto listed = store->ListGrants(true, kT0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].granted_by().user(), "alice");
  auto active = store->ActiveGrant("billing-agent", "orders-db", kT0);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->granted_by().uid(), 1000u);
}

TEST_F(ApprovalStoreTest, ActiveGrantHonoursExpiryRevocationAndPicksLatestExpiry) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto none = store->ActiveGrant("billing-agent", "orders-db", kT0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store->InsertGrant(Grant("grt-short", kT0, kT0 + 60 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-long", kT0, kT0 + 600 * kSecond)).ok());
  ASSERT_TRUE(store->InsertGrant(Grant("grt-mid", kT0 + 1, kT0 + 300 * kSecond)).ok());
  ASSERT_TRUE(
      store->InsertGrant(Grant("grt-other", kT0, kT0 + 9000 * kSecond, "other-agent")).ok());
  ASSERT_TRUE(
      store->InsertGrant(Grant("grt-otherdb", kT0, kT0 + 9000 * kSecond, "billing-agent", "x"))
          .ok());

  auto g = store->ActiveGrant("billing-agent", "orders-db", kT0 + kSecond);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->id(), "grt-long");

  // Revoking the latest falls back to the next one still running.
  auto revoked = store->Revoke("grt-long", Alice(), kT0 + 2 * kSecond);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_us(), kT0 + 2 * kSecond);
  EXPECT_EQ(revoked->revoked_by().user(), "alice");
  EXPECT_EQ((*store->ActiveGrant("billing-agent", "orders-db", kT0 + 3 * kSecond))->id(),
            "grt-mid");
  // Expiry is exclusive: at expires_us the grant is over.
  EXPECT_EQ((*store->ActiveGrant("billing-agent", "orders-db", kT0 + 300 * kSecond - 1))->id(),
            "grt-mid");
  EXPECT_FALSE(store->ActiveGrant("billing-agent", "orders-db", kT0 + 300 * kSecond)->has_value());
}

TEST_F(ApprovalStoreTest, RevokeRefusesRevokedExpiredAndUnknown) {
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

TEST_F(ApprovalStoreTest, ReopenKeepsEverything) {
  v1::ApprovalRequest approved;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(
        store->InsertRequest(Request("apr-1", kT0, "billing-agent", "orders-db", "fp")).ok());
    ASSERT_TRUE(store->InsertRequest(Request("apr-2", kT0 + 1)).ok());
    auto r = store->Resolve("apr-1", v1::APPROVAL_STATE_APPROVED, Alice(), "ok", kT0 + 2,
                            kT0 + 3600 * kSecond);
    ASSERT_TRUE(r.ok());
    approved = *r;
    ASSERT_TRUE(store->InsertGrant(Grant("grt-1", kT0, kT0 + 3600 * kSecond)).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto r1 = store->GetRequest("apr-1");
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*r1, approved));
  EXPECT_EQ(store->GetRequest("apr-2")->state(), v1::APPROVAL_STATE_PENDING);
  EXPECT_TRUE(*store->WindowAllows("billing-agent", "orders-db", "fp", kT0 + 10));
  EXPECT_EQ((*store->ActiveGrant("billing-agent", "orders-db", kT0 + 10))->id(), "grt-1");
  // A restart then expires what was pending.
  EXPECT_EQ(*store->ExpireAllPending(kT0 + 20, "restart"), 1);
}

TEST_F(ApprovalStoreTest, NotADatabaseIsACleanDataLossError) {
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage += "this is not a database ";
  ASSERT_TRUE(WriteFileAtomic(path_, garbage, 0600).ok());
  auto store = ApprovalStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  // The file is left as it was for someone to look at.
  EXPECT_EQ(*ReadFile(path_), garbage);
}

TEST_F(ApprovalStoreTest, CorruptPagesGiveAnErrorNotACrash) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->InsertRequest(Request(absl::StrCat("apr-", i), kT0 + i)).ok());
    }
  }  // closing the last connection checkpoints the WAL into the main file
  auto data = ReadFile(path_);
  ASSERT_TRUE(data.ok());
  ASSERT_GT(data->size(), 8192u);
  std::string bad = *data;
  // Keep the 100-byte header and page 1 (the schema); scribble over everything after.
  for (size_t i = 4096; i < bad.size(); ++i) bad[i] = static_cast<char>(i * 7 + 13);
  ASSERT_TRUE(WriteFileAtomic(path_, bad, 0600).ok());

  auto store = ApprovalStore::Open(path_);
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    return;
  }
  auto list = (*store)->ListRequests(false, 1000);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kDataLoss) << list.status();
}

TEST_F(ApprovalStoreTest, NewerSchemaIsRefused) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
  }
  // Bump user_version (a 4-byte big-endian field at offset 60 of the header).
  auto data = ReadFile(path_);
  ASSERT_TRUE(data.ok());
  std::string bumped = *data;
  bumped[60] = 0;
  bumped[61] = 0;
  bumped[62] = 0;
  bumped[63] = 99;
  ASSERT_TRUE(WriteFileAtomic(path_, bumped, 0600).ok());
  auto store = ApprovalStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
}

TEST_F(ApprovalStoreTest, SqlLookingTextIsStoredVerbatim) {
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

}  // namespace
}  // namespace interlock::approval
