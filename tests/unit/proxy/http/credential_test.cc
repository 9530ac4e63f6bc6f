// The credential interlockd injects, read from its reference per request.
#include "userspace/proxy/http/credential.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "userspace/common/file_util.h"

namespace interlock::proxy::http {
namespace {

using Kind = config::HttpCredentialConfig::Kind;

class CredentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/interlock-cred-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    file_ = dir_ + "/secret";
  }
  void TearDown() override {
    ::unlink(file_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_, file_;
};

TEST_F(CredentialTest, BearerBasicAndHeaderAreReadEachTime) {
  ASSERT_TRUE(WriteFileAtomic(file_, "tok-1\n", 0600).ok());
  config::HttpCredentialConfig bearer{.kind = Kind::kBearer, .secret_ref = "file:" + file_};
  auto f = CredentialField(bearer);
  ASSERT_TRUE(f.ok() && f->has_value()) << f.status();
  EXPECT_EQ((*f)->name, "Authorization");
  EXPECT_EQ((*f)->value.reveal(), "Bearer tok-1");
  // Rotation: the next request reads the new secret.
  ASSERT_TRUE(WriteFileAtomic(file_, "tok-2\n", 0600).ok());
  EXPECT_EQ((*CredentialField(bearer))->value.reveal(), "Bearer tok-2");

  config::HttpCredentialConfig basic{.kind = Kind::kBasic, .user = "svc", .secret_ref = "file:" + file_};
  EXPECT_EQ((*CredentialField(basic))->value.reveal(), "Basic c3ZjOnRvay0y");  // svc:tok-2
  config::HttpCredentialConfig header{.kind = Kind::kHeader, .header_name = "X-Api-Key", .secret_ref = "file:" + file_};
  auto h = CredentialField(header);
  EXPECT_EQ((*h)->name, "X-Api-Key");
  EXPECT_EQ((*h)->value.reveal(), "tok-2");
  EXPECT_THAT(AgentCredentialFields(header), ::testing::ElementsAre("authorization", "proxy-authorization", "x-api-key"));
  EXPECT_EQ(CredentialKindName(header), "header:X-Api-Key");
}

TEST_F(CredentialTest, ErrorsNameTheReferenceNeverTheSecret) {
  config::HttpCredentialConfig missing{.kind = Kind::kBearer, .secret_ref = "file:" + file_};
  auto f = CredentialField(missing);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), ::testing::HasSubstr(file_));
  // A secret that would inject a header line is refused.
  ASSERT_TRUE(WriteFileAtomic(file_, "a\rX-Evil: 1", 0600).ok());
  auto bad = CredentialField(missing);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), ::testing::Not(::testing::HasSubstr("X-Evil")));
}

TEST_F(CredentialTest, NoneInjectsNothing) {
  auto f = CredentialField({});
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
}

TEST_F(CredentialTest, ASourceRereadsOnlyAChangedFileAndSeesEveryChange) {
  ASSERT_TRUE(WriteFileAtomic(file_, "tok-1\n", 0600).ok());
  testing::FakeClock clock;
  CredentialSource source({.kind = Kind::kBearer, .secret_ref = "file:" + file_}, &clock);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-1");
  // Rotated (an atomic rename: a new inode): the cached field stands until the next check.
  ASSERT_TRUE(WriteFileAtomic(file_, "tok-2\n", 0600).ok());
  clock.Advance(kCredentialRecheck / 2);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-1");
  clock.Advance(kCredentialRecheck);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-2");
  clock.Advance(kCredentialRecheck);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-2");  // unchanged: kept
  // Rewritten in place, the same length.
  {
    int fd = ::open(file_.c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "tok-3\n", 6), 6);
    ::close(fd);
  }
  clock.Advance(kCredentialRecheck);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-3");
  // Made readable by others: refused from the next check on, not served from the cache.
  ASSERT_EQ(::chmod(file_.c_str(), 0644), 0);
  clock.Advance(kCredentialRecheck);
  EXPECT_EQ(source.Field().status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(::chmod(file_.c_str(), 0600), 0);
  EXPECT_EQ((*source.Field())->value.reveal(), "Bearer tok-3");
  // Removed: an error, every time (errors are not cached).
  ::unlink(file_.c_str());
  clock.Advance(kCredentialRecheck);
  EXPECT_FALSE(source.Field().ok());
  EXPECT_FALSE(source.Field().ok());
}

}  // namespace
}  // namespace interlock::proxy::http
