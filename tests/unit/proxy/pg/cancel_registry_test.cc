// CancelRegistry: (pid, key) pairs handed to agents, with the randomness injected so that
// collisions and out-of-range draws can be forced.
#include "userspace/proxy/pg/cancel_registry.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::proxy::pg {
namespace {

// Returns `values` in order; a test that draws more than it scripted fails.
std::function<uint32_t()> Scripted(std::vector<uint32_t> values) {
  auto state = std::make_shared<std::pair<std::vector<uint32_t>, size_t>>(std::move(values), 0);
  return [state]() -> uint32_t {
    if (state->second >= state->first.size()) {
      ADD_FAILURE() << "random32 called more than scripted";
      return 1;
    }
    return state->first[state->second++];
  };
}

CancelTarget Target(std::string session_id, uint32_t upstream_pid = 1234) {
  CancelTarget t;
  t.session_id = std::move(session_id);
  t.cgroup_id = 42;
  t.workload = "billing-agent";
  t.upstream_pid = upstream_pid;
  t.upstream_key = 5678;
  return t;
}

// The agent sees the backend's real pid (PQbackendPID() matches pg_stat_activity) and a key
// of interlockd's own.
TEST(CancelRegistry, ShowsTheRealBackendPidWithOurOwnKey) {
  CancelRegistry reg(Scripted({0xdeadbeef}));
  auto [pid, key] = reg.Register(Target("a", 4242));
  EXPECT_EQ(pid, 4242u);
  EXPECT_EQ(key, 0xdeadbeefu);
  EXPECT_NE(key, 5678u);  // never the upstream's key
  ASSERT_NE(reg.Find(4242, 0xdeadbeef), nullptr);
  EXPECT_EQ(reg.Find(4242, 5678), nullptr);  // the upstream key is not accepted from agents
}

// Two servers may each have a backend 4242: the keys tell them apart, drawn until unique.
TEST(CancelRegistry, SamePidOnTwoServersIsToldApartByKey) {
  CancelRegistry reg(Scripted({7, 7, 8}));
  auto a = reg.Register(Target("a", 4242));
  auto b = reg.Register(Target("b", 4242));
  EXPECT_EQ(a, std::make_pair(4242u, 7u));
  EXPECT_EQ(b, std::make_pair(4242u, 8u));  // 7 redrawn
  EXPECT_EQ(reg.size(), 2u);
  EXPECT_EQ(reg.Find(4242, 7)->session_id, "a");
  EXPECT_EQ(reg.Find(4242, 8)->session_id, "b");
  reg.Unregister(4242, 7);
  EXPECT_EQ(reg.Find(4242, 7), nullptr);
  EXPECT_EQ(reg.Find(4242, 8)->session_id, "b");
  EXPECT_EQ(reg.size(), 1u);
}

// Without a pid from the server (none sent), a random positive unused one stands in.
struct RegisterCase {
  std::string name;
  std::vector<uint32_t> random;
  std::vector<std::pair<uint32_t, uint32_t>> want;  // (pid, key) of each Register, in order
};
void PrintTo(const RegisterCase& c, std::ostream* os) { *os << c.name; }

class CancelRegistryRegister : public ::testing::TestWithParam<RegisterCase> {};

TEST_P(CancelRegistryRegister, IssuesUniquePositivePidsWhenTheServerSentNone) {
  const RegisterCase& c = GetParam();
  CancelRegistry reg(Scripted(c.random));
  std::vector<std::pair<uint32_t, uint32_t>> got;
  for (size_t i = 0; i < c.want.size(); ++i) {
    got.push_back(reg.Register(Target("s" + std::to_string(i), 0)));
  }
  EXPECT_EQ(got, c.want);
  EXPECT_EQ(reg.size(), c.want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const CancelTarget* t = reg.Find(got[i].first, got[i].second);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->session_id, "s" + std::to_string(i));
  }
}

// clang-format off
const RegisterCase kRegisterCases[] = {
    {"PidThenKey", {5, 0xdeadbeef}, {{5, 0xdeadbeef}}},
    {"HighBitCleared", {0x80000007, 9}, {{7, 9}}},
    {"LargestPid", {0xffffffff, 0xffffffff}, {{0x7fffffff, 0xffffffff}}},
    {"ZeroRedrawn", {0, 0x80000000, 12, 0}, {{12, 0}}},
    {"CollisionRedrawn", {5, 100, 5, 0x80000005, 6, 200}, {{5, 100}, {6, 200}}},
    {"ManyCollisions", {3, 1, 3, 2, 3, 2, 3, 4, 5}, {{3, 1}, {2, 3}, {4, 5}}},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Draws, CancelRegistryRegister, ::testing::ValuesIn(kRegisterCases),
                         [](const ::testing::TestParamInfo<RegisterCase>& i) {
                           return i.param.name;
                         });

TEST(CancelRegistry, FindNeedsPidAndKey) {
  CancelRegistry reg(Scripted({0x12345678, 0x0badf00d}));
  auto [pid, key] = reg.Register(Target("a", 10));
  auto [pid2, key2] = reg.Register(Target("b", 11));
  struct Case {
    uint32_t pid;
    uint32_t key;
    const char* want_session;  // nullptr: not found
  };
  const Case cases[] = {
      {pid, key, "a"},
      {pid2, key2, "b"},
      {pid, key ^ 1, nullptr},  // one bit off
      {pid, key ^ 0x80000000, nullptr},
      {pid, 0, nullptr},
      {pid, key2, nullptr},  // another session's key
      {pid2, key, nullptr},
      {12, key, nullptr},  // unknown pid
      {0, 0, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.pid << "/" << c.key);
    const CancelTarget* t = reg.Find(c.pid, c.key);
    if (c.want_session == nullptr) {
      EXPECT_EQ(t, nullptr);
    } else {
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->session_id, c.want_session);
      EXPECT_EQ(t->cgroup_id, 42u);
      EXPECT_EQ(t->workload, "billing-agent");
      EXPECT_EQ(t->upstream_key, 5678u);
    }
  }
}

TEST(CancelRegistry, UnregisterForgetsThePair) {
  CancelRegistry reg(Scripted({1, 2, 3}));
  auto [pid, key] = reg.Register(Target("a", 10));
  auto [pid2, key2] = reg.Register(Target("b", 11));
  reg.Unregister(pid, key);
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg.Find(pid, key), nullptr);
  EXPECT_NE(reg.Find(pid2, key2), nullptr);
  reg.Unregister(pid, key);    // again: no-op
  reg.Unregister(99999, 1);    // never registered: no-op
  reg.Unregister(pid2, key);   // right pid, wrong key: no-op
  EXPECT_EQ(reg.size(), 1u);
  // The backend pid may come back (the server reuses pids), with a new key; the old key
  // no longer works.
  EXPECT_EQ(reg.Register(Target("c", 10)), std::make_pair(10u, 3u));
  EXPECT_EQ(reg.Find(10, key), nullptr);
  ASSERT_NE(reg.Find(10, 3), nullptr);
  EXPECT_EQ(reg.Find(10, 3)->session_id, "c");
}

}  // namespace
}  // namespace interlock::proxy::pg
