// NextRefusalAction: a refused PostgreSQL agent is answered as a server without TLS
// answers, so that libpq (sslmode=prefer, GSSAPI) shows the ErrorResponse's text.
#include "userspace/proxy/pg/refusal.h"

#include "gtest/gtest.h"
#include "userspace/codec/pg/encode.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = ::interlock::codec::pg;
const std::string kError = "E-bytes";

TEST(NextRefusalAction, SslThenGssAreDeclinedAndTheStartupMessageGetsTheError) {
  const std::string startup = cpg::EncodeStartupMessage({{"user", "agent"}, {"database", "x"}});
  std::string buf = cpg::EncodeSslRequest();
  RefusalAction a = NextRefusalAction(buf, 0, kError);
  EXPECT_EQ(a.reply, "N");
  EXPECT_EQ(a.consume, 8u);
  EXPECT_FALSE(a.done);
  buf = cpg::EncodeGssEncRequest() + startup;
  a = NextRefusalAction(buf, 1, kError);
  EXPECT_EQ(a.reply, "N");
  EXPECT_FALSE(a.done);
  buf.erase(0, a.consume);
  a = NextRefusalAction(buf, 2, kError);
  EXPECT_EQ(a.reply, kError);
  EXPECT_EQ(a.consume, startup.size());
  EXPECT_TRUE(a.done);
}

TEST(NextRefusalAction, WaitsForAWholePacket) {
  const std::string startup = cpg::EncodeStartupMessage({{"user", "agent"}});
  for (size_t n = 0; n < startup.size(); ++n) {
    RefusalAction a = NextRefusalAction(startup.substr(0, n), 0, kError);
    EXPECT_EQ(a.consume, 0u) << n;
    EXPECT_TRUE(a.reply.empty()) << n;
    EXPECT_FALSE(a.done) << n;
  }
}

TEST(NextRefusalAction, EndlessNegotiationGarbageAndCancelsEndIt) {
  // A third encryption request is not answered 'N' again.
  RefusalAction a = NextRefusalAction(cpg::EncodeSslRequest(), kMaxRefusalNegotiations, kError);
  EXPECT_EQ(a.reply, kError);
  EXPECT_TRUE(a.done);
  // Not PostgreSQL framing (an HTTP request): the error, and close.
  a = NextRefusalAction("GET / HTTP/1.1\r\n\r\n", 0, kError);
  EXPECT_EQ(a.reply, kError);
  EXPECT_TRUE(a.done);
  // A CancelRequest never gets a reply.
  a = NextRefusalAction(cpg::EncodeCancelRequest(1, 2), 0, kError);
  EXPECT_TRUE(a.reply.empty());
  EXPECT_TRUE(a.done);
}

}  // namespace
}  // namespace interlock::proxy::pg
