// HecDeliverer: POSTs batches of audit events to a Splunk HTTP Event Collector
// (hec_format.h) over HTTPS (verified against ca_file or the system trust store, name =
// the URL's host) or, to loopback only, plain HTTP. A tiny HTTP/1.1 client on a blocking
// socket (net::BlockingStream) in the sink's worker thread; the answer's head is parsed by
// codec/http (PeekResponse), its body read by Content-Length, chunked or until close, and
// the connection is kept alive between batches.
//
//   2xx                    acknowledged (the batch is done)
//   429, 5xx, I/O errors   UNAVAILABLE: retried with backoff (RemoteSink)
//   other statuses         INVALID_ARGUMENT: the batch is rejected for good (a bad token,
//                          a malformed event, a redirect): counted, logged, DAEMON event
//
// A request that fails on a reused keep-alive connection before any answer byte arrived
// is sent once more on a fresh connection (the server may have closed it while idle).
// A batch larger than batch_max_bytes goes as several requests; when one of them is
// rejected the others still go, and the whole batch is reported as rejected (the failed
// count may then include events the collector took). A retryable failure part-way resends
// the whole batch (duplicates, same ids).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "userspace/audit/sinks/hec_format.h"
#include "userspace/audit/sinks/remote_sink.h"
#include "userspace/auth/secret.h"
#include "userspace/config/config.h"
#include "userspace/net/blocking_client.h"

namespace interlock::audit::sinks {

// Largest answer (head and body) read from the collector.
inline constexpr size_t kMaxHecResponseBytes = 64 * 1024;

class HecDeliverer final : public Deliverer {
 public:
  // `token` must be printable US-ASCII without spaces (CreateRemoteSink checks it).
  HecDeliverer(config::HecSinkSettings settings, auth::Secret token, config::AuditSinkFormat format = config::AuditSinkFormat::kJson);
  absl::Status Deliver(const std::vector<v1::AuditEvent>& events) override;
  std::string destination() const override { return absl::StrCat("hec ", settings_.url); }

 private:
  // One request/answer exchange; `*answered` tells whether any answer byte arrived.
  absl::Status Exchange(absl::string_view request, bool* answered);
  absl::Status Post(absl::string_view body);

  const config::HecSinkSettings settings_;
  const auth::Secret token_;
  const HecMetadata meta_;
  const std::string host_header_;
  std::unique_ptr<net::BlockingStream> stream_;
};

}  // namespace interlock::audit::sinks
