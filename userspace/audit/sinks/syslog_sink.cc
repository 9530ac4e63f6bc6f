#include "userspace/audit/sinks/syslog_sink.h"

#include "absl/strings/str_cat.h"

namespace interlock::audit::sinks {

SyslogDeliverer::SyslogDeliverer(config::SyslogSinkSettings settings, SyslogFormatOptions format,
                                 absl::Duration timeout)
    : settings_(std::move(settings)), format_(std::move(format)), timeout_(timeout) {}

std::string SyslogDeliverer::destination() const {
  const char* t = settings_.transport == config::SyslogTransport::kUdp   ? "syslog-udp"
                  : settings_.transport == config::SyslogTransport::kTcp ? "syslog-tcp"
                                                                         : "syslog-tls";
  const bool v6 = settings_.host.find(':') != std::string::npos;
  return absl::StrCat(t, " ", v6 ? "[" : "", settings_.host, v6 ? "]" : "", ":", settings_.port);
}

absl::Status SyslogDeliverer::Deliver(const std::vector<v1::AuditEvent>& events) {
  return settings_.transport == config::SyslogTransport::kUdp ? DeliverDatagrams(events)
                                                              : DeliverStream(events);
}

absl::Status SyslogDeliverer::DeliverStream(const std::vector<v1::AuditEvent>& events) {
  // A receiver that closed the connection (restart, idle timeout) is noticed here, before
  // a batch is written into a socket that nobody reads.
  if (stream_ != nullptr && stream_->PeerClosed()) stream_.reset();
  if (stream_ == nullptr) {
    net::BlockingClientOptions o;
    o.host = settings_.host;
    o.port = settings_.port;
    o.tls = settings_.transport == config::SyslogTransport::kTls;
    o.ca_file = settings_.ca_file;
    o.server_name = settings_.server_name;
    o.client_cert_file = settings_.client_cert_file;
    o.client_key_file = settings_.client_key_file;
    o.timeout = timeout_;
    absl::StatusOr<std::unique_ptr<net::BlockingStream>> s = net::BlockingStream::Connect(o);
    if (!s.ok()) {
      // A certificate that does not verify is retried like an outage (the operator may fix
      // the receiver); it is never sent to anyway.
      return absl::UnavailableError(s.status().message());
    }
    stream_ = *std::move(s);
  }
  std::string buf;
  for (const v1::AuditEvent& e : events)
    AppendOctetCountedFrame(FormatSyslogMessage(e, format_), &buf);
  if (absl::Status st = stream_->WriteAll(buf); !st.ok()) {
    stream_.reset();
    return absl::UnavailableError(st.message());
  }
  return absl::OkStatus();
}

absl::Status SyslogDeliverer::DeliverDatagrams(const std::vector<v1::AuditEvent>& events) {
  if (datagram_ == nullptr) {
    absl::StatusOr<std::unique_ptr<net::DatagramClient>> d =
        net::DatagramClient::Connect(settings_.host, settings_.port);
    if (!d.ok()) return absl::UnavailableError(d.status().message());
    datagram_ = *std::move(d);
  }
  for (const v1::AuditEvent& e : events) {
    std::string msg = TruncateForDatagram(FormatSyslogMessage(e, format_), settings_.udp_max_bytes);
    if (absl::Status st = datagram_->Send(msg); !st.ok()) {
      datagram_.reset();
      // The events before this one were sent; resending them is allowed (at least once).
      return absl::UnavailableError(st.message());
    }
  }
  return absl::OkStatus();
}

}  // namespace interlock::audit::sinks
