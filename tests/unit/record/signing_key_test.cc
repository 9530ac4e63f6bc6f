#include "userspace/record/signing_key.h"

#include <sys/stat.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"

namespace interlock::record {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

int Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(RecordingKey, CreatesKeyFilesOnFirstUseWithTightModes) {
  TempDir dir;
  auto key = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Mode(dir.File("keys")), 0700);
  EXPECT_EQ(Mode(dir.File("keys/recording.key")), 0600);
  EXPECT_EQ(Mode(dir.File("keys/recording.pub")), 0644);
  auto priv = ReadFile(dir.File("keys/recording.key"));
  ASSERT_TRUE(priv.ok());
  EXPECT_THAT(*priv, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  auto pub = ReadFile(dir.File("keys/recording.pub"));
  ASSERT_TRUE(pub.ok());
  EXPECT_THAT(*pub, HasSubstr("-----BEGIN PUBLIC KEY-----"));
}

TEST(RecordingKey, SecondLoadReturnsTheSameKey) {
  TempDir dir;
  auto first = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->Fingerprint(), second->Fingerprint());
}

TEST(RecordingKey, RefusesKeyReadableByOthers) {
  TempDir dir;
  ASSERT_TRUE(RecordingKey::LoadOrCreate(dir.path()).ok());
  const std::string key_path = dir.File("keys/recording.key");
  ASSERT_EQ(::chmod(key_path.c_str(), 0644), 0);
  auto key = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(key.status().message(), HasSubstr(key_path));
  EXPECT_THAT(key.status().message(), HasSubstr("0644"));
}

TEST(RecordingKey, RefusesGroupWritableKey) {
  TempDir dir;
  ASSERT_TRUE(RecordingKey::LoadOrCreate(dir.path()).ok());
  ASSERT_EQ(::chmod(dir.File("keys/recording.key").c_str(), 0620), 0);
  EXPECT_EQ(RecordingKey::LoadOrCreate(dir.path()).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(RecordingKey, GarbageKeyFileIsInvalidArgument) {
  TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.File("keys"), 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("keys/recording.key"), "not a key\n", 0600).ok());
  auto key = RecordingKey::LoadOrCreate(dir.path());
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(key.status().message(), HasSubstr("recording.key"));
}

TEST(RecordingKey, RestoresMissingPublicKeyFile) {
  TempDir dir;
  auto key = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_TRUE(key.ok());
  ASSERT_EQ(::unlink(dir.File("keys/recording.pub").c_str()), 0);
  ASSERT_TRUE(RecordingKey::LoadOrCreate(dir.path()).ok());
  auto pub = RecordingKey::LoadPublic(dir.File("keys/recording.pub"));
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(pub->Fingerprint(), key->Fingerprint());
}

TEST(RecordingKey, SignVerifyWithLoadedPublicKey) {
  TempDir dir;
  auto key = RecordingKey::LoadOrCreate(dir.path());
  ASSERT_TRUE(key.ok());
  auto pub = RecordingKey::LoadPublic(dir.File("keys/recording.pub"));
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto sig = key->Sign("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(pub->Verify("hello", *sig));
  EXPECT_FALSE(pub->Verify("hellO", *sig));
  std::string bad = *sig;
  bad[10] ^= 1;
  EXPECT_FALSE(pub->Verify("hello", bad));
  EXPECT_FALSE(pub->Verify("hello", sig->substr(0, 63)));
  EXPECT_FALSE(RecordingKey::Generate().public_key().Verify("hello", *sig));
}

TEST(RecordingKey, FingerprintIsSha256OfRawPublicKey) {
  RecordingKey key = RecordingKey::Generate();
  EXPECT_EQ(key.public_key().raw().size(), 32u);
  EXPECT_EQ(key.Fingerprint(), HexEncode(HashRecord(key.public_key().raw())));
  EXPECT_EQ(key.Fingerprint().size(), 64u);
  EXPECT_NE(key.Fingerprint(), RecordingKey::Generate().Fingerprint());
}

TEST(RecordingKey, PemRoundTrips) {
  RecordingKey key = RecordingKey::Generate();
  auto again = RecordingKey::FromPem(key.ToPem());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->Fingerprint(), key.Fingerprint());
  auto pub = RecordingPublicKey::FromPem(key.public_key().ToPem());
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(pub->Fingerprint(), key.Fingerprint());
  EXPECT_EQ(RecordingPublicKey::FromPem("junk").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RecordingPublicKey::FromRaw("short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecordingKey, LoadPublicOfMissingFileIsNotFound) {
  TempDir dir;
  EXPECT_EQ(RecordingKey::LoadPublic(dir.File("nope.pub")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace interlock::record
