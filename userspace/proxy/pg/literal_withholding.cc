#include "userspace/proxy/pg/literal_withholding.h"

#include <utility>

#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;
namespace fe = ::interlock::codec::pg::frontend;

namespace {

// Values emptied, NULLs kept.
void EmptyValues(std::vector<std::optional<absl::string_view>>& values) {
  for (auto& v : values) {
    if (v.has_value()) v = absl::string_view();
  }
}

}  // namespace

std::optional<std::string> WithholdLiterals(const cpg::FrontendMessage& m, bool standard_conforming_strings,
                                            sql::NormalizeMemo* memo) {
  auto normalize = [&](absl::string_view text) {
    return memo != nullptr ? memo->Normalize(text, standard_conforming_strings)
                           : sql::NormalizeLiterals(text, standard_conforming_strings);
  };
  if (const auto* q = m.get<cpg::Query>()) {
    return cpg::Encode(cpg::Query{normalize(q->query)});
  }
  if (const auto* p = m.get<cpg::Parse>()) {
    cpg::Parse withheld = *p;
    withheld.query = normalize(p->query);
    return cpg::Encode(withheld);
  }
  if (const auto* b = m.get<cpg::Bind>()) {
    cpg::Bind withheld = *b;
    EmptyValues(withheld.params);
    return cpg::Encode(withheld);
  }
  if (const auto* f = m.get<cpg::FunctionCall>()) {
    cpg::FunctionCall withheld = *f;
    EmptyValues(withheld.args);
    return cpg::Encode(withheld);
  }
  if (m.type == fe::kCopyData) return cpg::Encode(cpg::CopyData{});
  return std::nullopt;
}

std::optional<std::string> WithholdLiterals(char type, absl::string_view raw,
                                            bool standard_conforming_strings) {
  if (type != fe::kQuery && type != fe::kParse && type != fe::kBind && type != fe::kFunctionCall &&
      type != fe::kCopyData) {
    return std::nullopt;
  }
  if (type == fe::kCopyData) return WithholdLiterals(cpg::FrontendMessage{type, {}}, standard_conforming_strings);
  const absl::string_view body =
      raw.size() >= cpg::kMessageHeaderBytes ? raw.substr(cpg::kMessageHeaderBytes) : absl::string_view();
  auto m = cpg::DecodeFrontend(type, body);
  if (!m.ok()) return cpg::EncodeMessage(type, "");  // never in clear
  return WithholdLiterals(*m, standard_conforming_strings);
}

}  // namespace interlock::proxy::pg
