// JsonWriter: appends compact JSON text to a string (task records, HTTP responses). Written by hand
// because the responses are small, flat and hot (an enqueue answer is ~80 bytes): a DOM
// (Boost.JSON) would allocate a node per field. The writer inserts commas itself; the caller keeps
// the nesting balanced.
//
//   std::string out;
//   JsonWriter w(out);
//   w.BeginObject();
//   w.Key("task_id").String(id);
//   w.Key("created").Bool(true);
//   w.EndObject();                       // {"task_id":"...","created":true}
//
// Thread-safety: a JsonWriter is used by one thread; it borrows `out`, which must outlive it.
#ifndef BMOS_STORAGE_JSON_WRITER_H_
#define BMOS_STORAGE_JSON_WRITER_H_

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace bmos::storage {

// Appends `s` to `out` as a JSON string literal (quotes included). Control characters, quotes and
// backslashes are escaped; other bytes are copied (REQUIRES: `s` is valid UTF-8, as every string
// that reaches a response is: request text was validated by the parser, handler text by the
// engine).
inline void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof(esc));
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }

  // An object key; the next call writes its value.
  JsonWriter& Key(std::string_view key) {
    Separate();
    AppendJsonString(out_, key);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }

  JsonWriter& String(std::string_view s) {
    Separate();
    AppendJsonString(out_, s);
    return *this;
  }
  // Null for an empty string (the contract's "error": null, "unique_key": null).
  JsonWriter& StringOrNull(std::string_view s) { return s.empty() ? Null() : String(s); }
  JsonWriter& Int(int64_t v) {
    Separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;  // 24 bytes always hold an int64
    out_.append(buf, end);
    return *this;
  }
  JsonWriter& Uint(uint64_t v) {
    Separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;
    out_.append(buf, end);
    return *this;
  }
  // Shortest text that reads back to `v` ("0.5", not "5E-1"); null for NaN and infinities,
  // which JSON cannot express.
  JsonWriter& Double(double v) {
    if (!std::isfinite(v)) return Null();
    Separate();
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;  // 32 bytes hold the shortest form of any double
    out_.append(buf, end);
    return *this;
  }
  JsonWriter& Bool(bool v) {
    Separate();
    out_.append(v ? "true" : "false");
    return *this;
  }
  JsonWriter& Null() {
    Separate();
    out_.append("null");
    return *this;
  }
  // Already-serialised JSON (REQUIRES: one valid JSON value), e.g. a stored task record.
  JsonWriter& Raw(std::string_view json) {
    Separate();
    out_.append(json);
    return *this;
  }

 private:
  JsonWriter& Open(char c) {
    Separate();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  JsonWriter& Close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  // A comma before every value or key except the first of its container and a key's value.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
    } else if (!first_) {
      out_.push_back(',');
    }
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_JSON_WRITER_H_
