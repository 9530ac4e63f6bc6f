#include "userspace/common/sha256.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace interlock {
namespace {

// FIPS 180-2 / NIST CAVP vectors.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShotAndHasherIsReusable) {
  const std::string text = "SELECT abalance FROM pgbench_accounts WHERE aid = 612345;";
  Sha256Hasher h;
  for (char c : text) h.Update(absl::string_view(&c, 1));
  EXPECT_EQ(h.Final(), Sha256(text));
  // After Final the hasher starts over.
  h.Update("abc");
  Sha256Digest abc = h.Final();
  EXPECT_EQ(abc, Sha256("abc"));
  EXPECT_EQ(abc[0], 0xba);
  EXPECT_EQ(h.Final(), Sha256(""));
}

TEST(Sha256, OneShotIsPerThread) {
  std::string a, b;
  std::thread t1([&] { for (int i = 0; i < 1000; ++i) a = Sha256Hex("abc"); });
  std::thread t2([&] { for (int i = 0; i < 1000; ++i) b = Sha256Hex(""); });
  t1.join();
  t2.join();
  EXPECT_EQ(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(b, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace interlock
