#include "userspace/audit/json_writer.h"

#include <random>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace interlock::audit {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Values that exercise escaping: quotes, backslash, control characters, multi-byte UTF-8,
// a byte that is not UTF-8.
std::string Text(int n) {
  static const char* const kTexts[] = {
      "plain", "with \"quotes\" and \\", "line\nbreak\ttab\x01", "Zürich €", "bad\xFF byte", "</script>"};
  return std::string(kTexts[n % 6]) + std::to_string(n);
}

// Sets fields of `m` through reflection, every one (keep = 1.0) or a random subset,
// recursively, with distinct non-default values: whatever the schema holds today, so a
// field added later is covered without touching this test.
void Fill(Message* m, std::mt19937* rng, double keep, int depth = 0) {
  const Reflection* r = m->GetReflection();
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  std::bernoulli_distribution take(keep);
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (!take(*rng)) continue;
    const int n = static_cast<int>((*rng)() % 1000) + 1;
    if (f->is_map()) {
      for (int k = 0; k < 2; ++k) {
        Message* entry = r->AddMessage(m, f);
        Fill(entry, rng, 1.0, depth + 1);
      }
      continue;
    }
    const int count = f->is_repeated() ? 2 : 1;
    for (int k = 0; k < count; ++k) {
      const bool rep = f->is_repeated();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(m, f, -n - k) : r->SetInt32(m, f, -n);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(m, f, -(int64_t{1} << 40) - n) : r->SetInt64(m, f, -(int64_t{1} << 40) - n);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(m, f, 4294967295u - n) : r->SetUInt32(m, f, 4294967295u - n);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          rep ? r->AddUInt64(m, f, (uint64_t{1} << 63) + n) : r->SetUInt64(m, f, (uint64_t{1} << 63) + n);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type()->value(f->enum_type()->value_count() - 1);
          rep ? r->AddEnum(m, f, e) : r->SetEnum(m, f, e);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING:
          rep ? r->AddString(m, f, Text(n + k)) : r->SetString(m, f, Text(n));
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 4) Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), rng, keep, depth + 1);
          break;
        default:
          break;
      }
    }
  }
}

TEST(JsonWriter, TypedWriterMatchesReflectionOnEveryField) {
  std::mt19937 rng(1);
  v1::AuditEvent ev;
  Fill(&ev, &rng, 1.0);
  ASSERT_TRUE(ev.has_identity() && ev.has_statement() && ev.statement().has_decision());
  EXPECT_EQ(EventToJsonLine(ev), internal::EventToJsonLineByReflection(ev));
}

TEST(JsonWriter, TypedWriterMatchesReflectionOnRandomSubsets) {
  std::mt19937 rng(20261126);
  for (int round = 0; round < 2000; ++round) {
    v1::AuditEvent ev;
    Fill(&ev, &rng, round % 2 == 0 ? 0.5 : 0.15);
    ASSERT_EQ(EventToJsonLine(ev), internal::EventToJsonLineByReflection(ev)) << "round " << round;
  }
}

TEST(JsonWriter, DefaultsAreLeftOutAsInProto3Json) {
  v1::AuditEvent ev;
  ev.mutable_identity();  // present but empty
  ev.mutable_statement()->set_rows(0);
  EXPECT_EQ(EventToJsonLine(ev), "{\"identity\":{},\"statement\":{}}\n");
  EXPECT_EQ(EventToJsonLine(v1::AuditEvent()), "{}\n");
}

TEST(JsonWriter, UnknownKindNumberIsNamedAsReflectionNamesIt) {
  v1::AuditEvent ev;
  ev.set_kind(static_cast<v1::AuditKind>(9999));
  EXPECT_EQ(EventToJsonLine(ev), internal::EventToJsonLineByReflection(ev));
}

TEST(JsonWriter, FullEventParsesBackWithProtobufsJsonParser) {
  std::mt19937 rng(7);
  v1::AuditEvent ev;
  Fill(&ev, &rng, 1.0);
  v1::AuditEvent clean;
  std::string line = EventToJsonLine(ev);
  ASSERT_EQ(line.find('\n'), line.size() - 1) << "one event, one line";
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line.substr(0, line.size() - 1), &clean).ok()) << line;
  // Once parsed (bad bytes are U+FFFD by then) it survives another round trip unchanged.
  // (Map entries have no order: compare as messages, not bytes.)
  std::string again = EventToJsonLine(clean);
  v1::AuditEvent back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(again.substr(0, again.size() - 1), &back).ok()) << again;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, clean)) << again;
}

TEST(JsonWriter, AppendKeepsWhatIsThere) {
  v1::AuditEvent ev;
  ev.set_outcome("ok");
  std::string out = "previous\n";
  AppendEventJsonLine(&out, ev);
  EXPECT_EQ(out, "previous\n{\"outcome\":\"ok\"}\n");
}

}  // namespace
}  // namespace interlock::audit
