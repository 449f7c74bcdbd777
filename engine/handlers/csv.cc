#include "engine/handlers/csv.h"

#include <fstream>

namespace bmos::engine::handlers {

namespace fs = std::filesystem;

CsvReader::CsvReader(std::istream* in, std::string display, CsvOptions options)
    : in_(in), display_(std::move(display)), options_(options), buf_(1u << 16, '\0') {}

CsvReader::~CsvReader() = default;

Result<std::unique_ptr<CsvReader>> CsvReader::Open(const fs::path& file, std::string display,
                                                   CsvOptions options) {
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (ec || !fs::exists(st)) return Status::NotFound(display + " does not exist");
  if (fs::is_directory(st)) return Status::InvalidArgument(display + " is a folder, not a file");
  auto stream = std::make_unique<std::ifstream>(file, std::ios::binary);
  if (!*stream) return Status::IOError(display + ": cannot open");
  auto reader = std::make_unique<CsvReader>(stream.get(), std::move(display), options);
  reader->owned_ = std::move(stream);
  return reader;
}

bool CsvReader::Fill() {
  if (eof_) return false;
  in_->read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  end_ = static_cast<size_t>(in_->gcount());
  pos_ = 0;
  if (end_ == 0) {
    eof_ = true;
    return false;
  }
  hash_.Update(std::string_view(buf_.data(), end_));
  return true;
}

int CsvReader::Peek() {
  if (pos_ == end_ && !Fill()) return kEof;
  return static_cast<unsigned char>(buf_[pos_]);
}

// Consumes one byte: moves the position and checks UTF-8 on the way, so that every error can
// say where it is without a second pass.
int CsvReader::Get() {
  if (pos_ == end_ && !Fill()) {
    if (utf8_need_ > 0) {
      error_ = Error(utf8_line_, utf8_column_, "incomplete UTF-8 sequence at the end of the file");
      return kBad;
    }
    return kEof;
  }
  const auto c = static_cast<unsigned char>(buf_[pos_++]);
  ++consumed_;
  if (utf8_need_ > 0) {
    if (c < utf8_lo_ || c > utf8_hi_) {
      error_ = Error(utf8_line_, utf8_column_,
                     "invalid UTF-8 byte sequence (the file must be UTF-8 encoded)");
      return kBad;
    }
    utf8_lo_ = 0x80;
    utf8_hi_ = 0xBF;
    --utf8_need_;
    return c;  // a continuation byte: the column does not move
  }
  if (c >= 0x80) {
    utf8_line_ = line_;
    utf8_column_ = column_;
    utf8_lo_ = 0x80;
    utf8_hi_ = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      utf8_need_ = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      utf8_need_ = 2;
      if (c == 0xE0) utf8_lo_ = 0xA0;
      if (c == 0xED) utf8_hi_ = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      utf8_need_ = 3;
      if (c == 0xF0) utf8_lo_ = 0x90;
      if (c == 0xF4) utf8_hi_ = 0x8F;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const char byte[] = {'0', 'x', kHex[c >> 4], kHex[c & 0xF], '\0'};
      error_ =
          Error(line_, column_,
                std::string("invalid UTF-8 byte ") + byte + " (the file must be UTF-8 encoded)");
      return kBad;
    }
    ++column_;
    after_cr_ = false;
    return c;
  }
  if (c == '\n') {
    if (!after_cr_) {
      ++line_;
      column_ = 1;
    }
    after_cr_ = false;
  } else if (c == '\r') {
    ++line_;
    column_ = 1;
    after_cr_ = true;
  } else {
    ++column_;
    after_cr_ = false;
  }
  return c;
}

// The common case in bulk: appends the run of buffered ASCII bytes that end no field (not a
// quote, CR, LF or `delim`; -1 for none, inside quotes) without the per-byte bookkeeping of Get.
void CsvReader::TakeAsciiRun(std::string* field, int delim) {
  if (utf8_need_ > 0) return;
  size_t i = pos_;
  while (i < end_) {
    const auto b = static_cast<unsigned char>(buf_[i]);
    if (b >= 0x80 || b == '"' || b == '\n' || b == '\r' || b == delim) break;
    ++i;
  }
  if (i == pos_) return;
  field->append(buf_, pos_, i - pos_);
  column_ += i - pos_;
  consumed_ += i - pos_;
  after_cr_ = false;
  pos_ = i;
}

Status CsvReader::Error(uint64_t line, uint64_t column, std::string_view what) const {
  return Status::InvalidArgument(display_ + ": line " + std::to_string(line) + ", column " +
                                 std::to_string(column) + ": " + std::string(what));
}

Result<bool> CsvReader::Next(CsvRecord* record) {
  if (!error_.ok()) return error_;
  if (!started_) {
    started_ = true;
    // A byte-order mark (EF BB BF) is not data. Fill has loaded at least its three bytes when
    // the input has them.
    if (Peek() != kEof && end_ - pos_ >= 3 && buf_.compare(pos_, 3, "\xEF\xBB\xBF") == 0) {
      pos_ += 3;
      consumed_ += 3;
    }
  }
  const int delim = static_cast<unsigned char>(options_.delimiter);
  struct Start {
    uint64_t line, column;
  };
  std::vector<Start> starts;
  for (;;) {
    if (Peek() == kEof) {
      const int c = Get();  // reports an incomplete UTF-8 sequence, if any
      if (c == kBad) return error_;
      return false;
    }
    record->fields.clear();
    record->line = line_;
    starts.clear();
    bool any_quoted = false;
    uint64_t end_line = 0, end_column = 0;
    for (;;) {
      starts.push_back({line_, column_});
      std::string& field = record->fields.emplace_back();
      int c = Peek();
      if (c == '"') {
        any_quoted = true;
        const Start open = starts.back();
        if (Get() == kBad) return error_;
        for (;;) {
          TakeAsciiRun(&field, -1);
          c = Get();
          if (c == kBad) return error_;
          if (c == kEof) {
            return error_ = Error(open.line, open.column,
                                  "unterminated quoted field (the quote opened here is never "
                                  "closed)");
          }
          if (c == '"') {
            if (Peek() != '"') break;
            if (Get() == kBad) return error_;
          }
          field.push_back(static_cast<char>(c));
          if (field.size() > options_.max_field_bytes) {
            return error_ = Error(open.line, open.column,
                                  "quoted field longer than " +
                                      std::to_string(options_.max_field_bytes) +
                                      " bytes (an unterminated quote?)");
          }
        }
        c = Peek();
        if (c != delim && c != '\n' && c != '\r' && c != kEof) {
          return error_ = Error(line_, column_,
                                "unexpected character after the closing quote of a field (a "
                                "quote inside a quoted field must be doubled)");
        }
      } else {
        for (;;) {
          TakeAsciiRun(&field, delim);
          c = Peek();
          if (c == kEof || c == delim || c == '\n' || c == '\r') break;
          if (c == '"') {
            return error_ = Error(line_, column_,
                                  "quote inside an unquoted field (quote the whole field and "
                                  "double the quote)");
          }
          c = Get();
          if (c == kBad) return error_;
          field.push_back(static_cast<char>(c));
          if (field.size() > options_.max_field_bytes) {
            return error_ = Error(
                       starts.back().line, starts.back().column,
                       "field longer than " + std::to_string(options_.max_field_bytes) + " bytes");
          }
        }
      }
      // Every byte goes through Get, which checks UTF-8: a sequence cut short by a delimiter or
      // a line ending is found here.
      if (c == delim) {
        if (Get() == kBad) return error_;
        continue;
      }
      end_line = line_;
      end_column = column_;
      if (c == '\r') {
        if (Get() == kBad) return error_;
        if (Peek() == '\n') Get();
      } else if (c == '\n') {
        if (Get() == kBad) return error_;
      }
      break;
    }
    if (utf8_need_ > 0 && Peek() == kEof) {
      Get();  // sets error_: the file ends inside a UTF-8 sequence
      return error_;
    }
    if (!any_quoted && record->fields.size() == 1 && record->fields[0].empty()) continue;
    if (options_.uniform_width) {
      if (width_ == 0) {
        width_ = record->fields.size();
        width_line_ = record->line;
      } else if (record->fields.size() != width_) {
        const bool more = record->fields.size() > width_;
        const uint64_t line = more ? starts[width_].line : end_line;
        const uint64_t column = more ? starts[width_].column : end_column;
        return error_ = Error(line, column,
                              "expected " + std::to_string(width_) + " fields (as in line " +
                                  std::to_string(width_line_) + "), found " +
                                  std::to_string(record->fields.size()) +
                                  (more ? " (a field holding the delimiter must be quoted)" : ""));
      }
    }
    return true;
  }
}

void AppendCsvField(std::string* out, std::string_view field, char delimiter) {
  bool quote = !field.empty() && (field.front() == ' ' || field.front() == '\t' ||
                                  field.back() == ' ' || field.back() == '\t');
  for (const char c : field) {
    if (c == delimiter || c == '"' || c == '\r' || c == '\n') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (const char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

namespace {

template <typename S>
void AppendRecord(std::string* out, std::span<const S> fields, char delimiter) {
  if (fields.size() == 1 && std::string_view(fields[0]).empty()) {
    out->append("\"\"\n");
    return;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(delimiter);
    AppendCsvField(out, fields[i], delimiter);
  }
  out->push_back('\n');
}

}  // namespace

void AppendCsvRecord(std::string* out, std::span<const std::string> fields, char delimiter) {
  AppendRecord(out, fields, delimiter);
}

void AppendCsvRecord(std::string* out, std::span<const std::string_view> fields, char delimiter) {
  AppendRecord(out, fields, delimiter);
}

}  // namespace bmos::engine::handlers
