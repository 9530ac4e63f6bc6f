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

CancelTarget Target(std::string session_id) {
  CancelTarget t;
  t.session_id = std::move(session_id);
  t.cgroup_id = 42;
  t.workload = "billing-agent";
  t.upstream_pid = 1234;
  t.upstream_key = 5678;
  return t;
}

struct RegisterCase {
  std::string name;
  std::vector<uint32_t> random;
  std::vector<std::pair<uint32_t, uint32_t>> want;  // (pid, key) of each Register, in order
};
void PrintTo(const RegisterCase& c, std::ostream* os) { *os << c.name; }

class CancelRegistryRegister : public ::testing::TestWithParam<RegisterCase> {};

TEST_P(CancelRegistryRegister, IssuesUniquePositivePids) {
  const RegisterCase& c = GetParam();
  CancelRegistry reg(Scripted(c.random));
  std::vector<std::pair<uint32_t, uint32_t>> got;
  for (size_t i = 0; i < c.want.size(); ++i) {
    got.push_back(reg.Register(Target("s" + std::to_string(i))));
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
  CancelRegistry reg(Scripted({10, 0x12345678, 11, 0x0badf00d}));
  auto [pid, key] = reg.Register(Target("a"));
  auto [pid2, key2] = reg.Register(Target("b"));
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
      EXPECT_EQ(t->upstream_pid, 1234u);
      EXPECT_EQ(t->upstream_key, 5678u);
    }
  }
}

TEST(CancelRegistry, UnregisterForgetsAndFreesThePid) {
  CancelRegistry reg(Scripted({10, 1, 11, 2, 10, 3}));
  auto [pid, key] = reg.Register(Target("a"));
  auto [pid2, key2] = reg.Register(Target("b"));
  reg.Unregister(pid);
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg.Find(pid, key), nullptr);
  EXPECT_NE(reg.Find(pid2, key2), nullptr);
  reg.Unregister(pid);    // again: no-op
  reg.Unregister(99999);  // never registered: no-op
  EXPECT_EQ(reg.size(), 1u);
  // The freed pid may be issued again, with a new key; the old key no longer works.
  EXPECT_EQ(reg.Register(Target("c")), std::make_pair(10u, 3u));
  EXPECT_EQ(reg.Find(10, key), nullptr);
  ASSERT_NE(reg.Find(10, 3), nullptr);
  EXPECT_EQ(reg.Find(10, 3)->session_id, "c");
}

}  // namespace
}  // namespace interlock::proxy::pg
