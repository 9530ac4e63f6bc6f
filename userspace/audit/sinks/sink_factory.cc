#include "userspace/audit/sinks/sink_factory.h"

#include <sys/random.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "userspace/audit/sinks/hec_sink.h"
#include "userspace/audit/sinks/syslog_sink.h"
#include "userspace/auth/secret.h"
#include "userspace/common/status_macros.h"

namespace interlock::audit::sinks {

std::string SpoolDir(const std::string& state_dir, const std::string& name) {
  return absl::StrCat(state_dir, "/audit/spool/", name);
}

absl::StatusOr<std::unique_ptr<RemoteSink>> CreateRemoteSink(
    const config::AuditSinkSettings& settings, const std::string& state_dir) {
  const std::string where = absl::StrCat("audit sink ", settings.name, ": ");
  RemoteSinkOptions o;
  o.name = settings.name;
  o.kinds = settings.kinds;
  o.queue_max_events = settings.queue_max_events;
  o.retry_initial = settings.retry_initial;
  o.retry_max = settings.retry_max;
  if (::getrandom(&o.seed, sizeof o.seed, GRND_NONBLOCK) != sizeof o.seed)
    o.seed = static_cast<uint64_t>(::getpid());
  std::unique_ptr<Deliverer> deliverer;
  if (settings.syslog.has_value()) {
    SyslogFormatOptions f;
    f.app_name = settings.syslog->app_name;
    f.facility = settings.syslog->facility;
    f.procid = ::getpid();
    f.format = settings.format;
    o.batch_max_events = 100;
    deliverer = std::make_unique<SyslogDeliverer>(*settings.syslog, std::move(f));
  } else if (settings.hec.has_value()) {
    absl::StatusOr<auth::Secret> token = auth::ResolveCredentialRef(settings.hec->token_ref);
    if (!token.ok())
      return absl::Status(token.status().code(),
                          absl::StrCat(where, "token_ref: ", token.status().message()));
    for (char c : token->reveal()) {
      if (c < 33 || c > 126) {
        // It goes into a header line: a CR, LF or space would let it add headers.
        return absl::InvalidArgumentError(
            absl::StrCat(where, "token_ref ", settings.hec->token_ref,
                         ": the token must be printable US-ASCII without spaces"));
      }
    }
    o.batch_max_events = settings.hec->batch_max_events;
    o.batch_max_delay = settings.hec->batch_max_delay;
    deliverer = std::make_unique<HecDeliverer>(*settings.hec, *std::move(token),
                                               settings.format);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(where, "no destination"));
  }
  SpoolOptions so;
  so.dir = SpoolDir(state_dir, settings.name);
  so.max_bytes = settings.spool_max_bytes;
  so.segment_bytes =
      std::min<uint64_t>(uint64_t{1} << 20, std::max<uint64_t>(settings.spool_max_bytes / 8, 4096));
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(so);
  if (!spool.ok())
    return absl::Status(spool.status().code(), absl::StrCat(where, spool.status().message()));
  return RemoteSink::Create(std::move(o), *std::move(spool), std::move(deliverer));
}

std::optional<v1::AuditEvent> ProblemEvent(const RemoteSink& sink, const RemoteSink::Problems& p) {
  if (!p.any()) return std::nullopt;
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_DAEMON);
  ev.set_outcome("error");
  ev.set_reason(p.dropped + p.corrupt_bytes > 0 ? "audit_sink_dropped" : "audit_sink_rejected");
  std::string detail = absl::StrCat("audit sink ", sink.name(), " (", sink.destination(), "):");
  if (p.dropped > 0) absl::StrAppend(&detail, " ", p.dropped, " events dropped;");
  if (p.corrupt_bytes > 0)
    absl::StrAppend(&detail, " ", p.corrupt_bytes, " corrupt spool bytes skipped;");
  if (p.failed > 0) absl::StrAppend(&detail, " ", p.failed, " events rejected by the destination;");
  if (!p.last_error.empty()) absl::StrAppend(&detail, " last error: ", p.last_error);
  ev.set_detail(detail);
  return ev;
}

void FillStatus(const RemoteSink& sink, v1::AuditSinkStatus* out) {
  RemoteSinkStats s = sink.stats();
  out->set_name(sink.name());
  out->set_destination(sink.destination());
  out->set_queued_events(s.queued_events);
  out->set_spooled_events(s.spooled_events);
  out->set_spooled_bytes(s.spooled_bytes);
  out->set_sent_events(s.sent_events);
  out->set_failed_events(s.failed_events);
  out->set_dropped_events(s.dropped_events);
  out->set_corrupt_spool_bytes(s.corrupt_spool_bytes);
  out->set_retries(s.retries);
  out->set_last_error(s.last_error);
  out->set_backing_off(s.backing_off);
}

}  // namespace interlock::audit::sinks
