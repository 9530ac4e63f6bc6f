// FormatSessionTimeline: one entry point, the decoder chosen by the recording's protocol.
#include "userspace/replay/timeline.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/codec/pg/encode.h"

namespace interlock::replay {
namespace {

namespace cpg = ::interlock::codec::pg;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<v1::Record> Recording(absl::string_view protocol) {
  std::vector<v1::Record> records(2);
  records[0].set_time_unix_nanos(1'000'000'000);
  records[0].mutable_open()->set_session_id("s");
  records[0].mutable_open()->set_protocol(std::string(protocol));
  records[1].set_time_unix_nanos(1'001'000'000);
  records[1].mutable_data()->set_direction(v1::DIRECTION_TO_UPSTREAM);
  records[1].mutable_data()->set_payload(cpg::EncodeStartupMessage({{"user", "u"}}) +
                                         cpg::EncodeQuery("SELECT 1"));
  return records;
}

TEST(SessionTimeline, APostgresRecordingIsDecoded) {
  const std::vector<v1::Record> r = Recording("postgres");
  EXPECT_EQ(RecordingProtocol(r), "postgres");
  EXPECT_TRUE(HasDecoder("postgres"));
  EXPECT_THAT(FormatSessionTimeline(r, {}), HasSubstr("agent   Query: SELECT 1\n"));
}

TEST(SessionTimeline, RawViewAndProtocolsWithoutADecoderShowRecords) {
  for (const auto& [protocol, raw_view] : {std::pair{"postgres", true}, std::pair{"tcp", false}}) {
    const std::vector<v1::Record> r = Recording(protocol);
    const std::string t = FormatSessionTimeline(r, {}, raw_view);
    EXPECT_THAT(t, Not(HasSubstr("Query: SELECT 1"))) << protocol;
    EXPECT_THAT(t, HasSubstr("agent -> upstream")) << protocol << "\n" << t;
  }
  EXPECT_FALSE(HasDecoder("tcp"));
  EXPECT_EQ(RecordingProtocol({}), "");
}

}  // namespace
}  // namespace interlock::replay
