#include "userspace/net/openssl_util.h"

#include <openssl/err.h>

namespace interlock::net {

std::string TakeOpensslReason() {
  unsigned long e = ERR_peek_error();
  std::string out;
  if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    if (reason != nullptr) {
      out = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      out = buf;
    }
  }
  ERR_clear_error();
  return out.empty() ? "unknown openssl error" : out;
}

int NoPassword(char*, int, int, void*) { return 0; }

}  // namespace interlock::net
