// SyslogDeliverer: sends audit events as RFC 5424 messages (syslog_format.h) over UDP
// (RFC 5426: one datagram per message, cut at udp_max_bytes), TCP with octet-counting
// framing (RFC 6587 section 3.4.1) or TLS (RFC 5425: the same framing inside TLS, the
// receiver's certificate verified against ca_file and server_name). Runs on a RemoteSink
// worker thread; reconnects on the next batch after any failure.
//
//   auto d = std::make_unique<SyslogDeliverer>(settings, SyslogFormatOptions{...});
//   RemoteSink::Create(options, std::move(spool), std::move(d));
//
// Acknowledgement: syslog has none. A batch counts as delivered once written into the
// connection (TCP, TLS) or handed to the kernel (UDP). Before each batch the connection is
// checked for a close by the receiver, so a receiver restart costs a reconnect, not the
// batch; but bytes written just before a receiver dies can still be lost, and UDP may lose
// datagrams on the way. Use TLS (or HEC, which acknowledges) where that matters.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "userspace/audit/sinks/remote_sink.h"
#include "userspace/audit/sinks/syslog_format.h"
#include "userspace/config/config.h"
#include "userspace/net/blocking_client.h"

namespace interlock::audit::sinks {

class SyslogDeliverer final : public Deliverer {
 public:
  SyslogDeliverer(config::SyslogSinkSettings settings, SyslogFormatOptions format,
                  absl::Duration timeout = absl::Seconds(5));
  absl::Status Deliver(const std::vector<v1::AuditEvent>& events) override;
  std::string destination() const override;

 private:
  absl::Status DeliverStream(const std::vector<v1::AuditEvent>& events);
  absl::Status DeliverDatagrams(const std::vector<v1::AuditEvent>& events);

  const config::SyslogSinkSettings settings_;
  const SyslogFormatOptions format_;
  const absl::Duration timeout_;
  std::unique_ptr<net::BlockingStream> stream_;
  std::unique_ptr<net::DatagramClient> datagram_;
};

}  // namespace interlock::audit::sinks
