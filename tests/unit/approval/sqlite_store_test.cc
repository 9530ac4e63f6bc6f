#include "userspace/approval/sqlite_store.h"

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
#include "tests/unit/approval/store_conformance.h"
#include "userspace/common/file_util.h"

namespace interlock::approval {
namespace {

using conformance::Alice;
using conformance::ApprovalStoreConformance;
using conformance::Grant;
using conformance::kSecond;
using conformance::kT0;
using conformance::Request;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

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
  std::unique_ptr<SqliteApprovalStore> OpenStore() {
    auto store = SqliteApprovalStore::Open(path_);
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
  auto store = SqliteApprovalStore::Open(path_);
  EXPECT_FALSE(store.ok());
}

TEST_F(ApprovalStoreTest, MissingDirectoryIsNotFound) {
  auto store = SqliteApprovalStore::Open(dir_ + "/missing/approvals.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
}

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
}

TEST_F(ApprovalStoreTest, NotADatabaseIsACleanDataLossError) {
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage += "this is not a database ";
  ASSERT_TRUE(WriteFileAtomic(path_, garbage, 0600).ok());
  auto store = SqliteApprovalStore::Open(path_);
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

  auto store = SqliteApprovalStore::Open(path_);
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
  auto store = SqliteApprovalStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
}

// Every store's behaviours (store_conformance.h), each on a fresh file.
class SqliteDirs {
 public:
  ~SqliteDirs() {
    for (const std::string& d : dirs_) {
      ::nftw(
          d.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
          FTW_DEPTH | FTW_PHYS);
    }
  }
  std::string Make() {
    std::string tmpl = "/tmp/approval_store_test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) abort();
    dirs_.push_back(tmpl);
    return tmpl;
  }

 private:
  std::vector<std::string> dirs_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, ApprovalStoreConformance,
                         ::testing::Values(conformance::StoreFactory{
                             "sqlite",
                             []() -> std::unique_ptr<ApprovalStore> {
                               static SqliteDirs dirs;  // removed at exit
                               auto store = SqliteApprovalStore::Open(dirs.Make() + "/approvals.db");
                               EXPECT_TRUE(store.ok()) << store.status();
                               if (!store.ok()) return nullptr;
                               return std::unique_ptr<ApprovalStore>(std::move(*store));
                             }}),
                         conformance::FactoryName);

}  // namespace
}  // namespace interlock::approval
