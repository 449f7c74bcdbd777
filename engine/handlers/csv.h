// CSV reading and writing after RFC 4180, as the BMOS handlers need it.
//
// Written by hand: no package in Debian reads RFC 4180 well (quoted fields with embedded commas,
// doubled quotes and line breaks, CRLF, a UTF-8 byte-order mark) and reports where bad data is
// by line and column; the CSV parsers packaged are either header-only projects not in Debian
// or split on commas and newlines and get quoted fields wrong.
//
// Reading rules:
//   - fields are separated by the delimiter (',' by default); records end with LF, CRLF or a
//     lone CR (outside quotes); the last record may lack a line ending;
//   - a field that starts with '"' is quoted: it ends at the next lone '"', a doubled '""'
//     stands for one '"', and delimiters and line breaks inside it are data (kept as written);
//     after the closing quote only a delimiter, a line ending or the end of the file may follow;
//   - a '"' inside an unquoted field is an error (the field must be quoted and the quote
//     doubled), as is a quoted field still open at the end of the file;
//   - a UTF-8 byte-order mark at the very start is skipped; every byte must be well-formed UTF-8;
//   - a line with nothing on it is skipped (a record with one empty field is written `""`);
//   - every record must have as many fields as the first (the header), unless told otherwise.
// Errors are InvalidArgument "<file>: line L, column C: <what>", with the line (1-based, counting
// line breaks inside quoted fields) and the column (1-based, in characters) where the problem is.
//
// Thread-safety: a CsvReader belongs to one thread. The writing functions are pure.
#ifndef BMOS_ENGINE_HANDLERS_CSV_H_
#define BMOS_ENGINE_HANDLERS_CSV_H_

#include <cstdint>
#include <filesystem>
#include <istream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/handlers/data_root.h"
#include "storage/status.h"

namespace bmos::engine::handlers {

struct CsvOptions {
  // The field separator. Default: ','.
  char delimiter = ',';
  // Whether every record must have as many fields as the first. Default: true.
  bool uniform_width = true;
  // Longest field accepted, in bytes: a guard against a stray quote swallowing a whole file.
  // Default: 64 MiB.
  size_t max_field_bytes = 64u << 20;
};

struct CsvRecord {
  std::vector<std::string> fields;
  uint64_t line = 0;  // the line on which the record starts
};

class CsvReader {
 public:
  // Reads from `in`, which must outlive the reader. `display` names the source in errors.
  CsvReader(std::istream* in, std::string display, CsvOptions options = {});
  // Opens `file` for reading. NotFound when it does not exist; InvalidArgument when it is not a
  // regular file; IOError when it cannot be opened.
  static Result<std::unique_ptr<CsvReader>> Open(const std::filesystem::path& file,
                                                 std::string display, CsvOptions options = {});
  ~CsvReader();

  // Reads the next record into *record: true when one was read, false at the end of the input,
  // or the InvalidArgument error of bad data (after which the reader is unusable).
  Result<bool> Next(CsvRecord* record);

  // Bytes consumed so far (for progress), and the content hash of those bytes (once Next has
  // returned false, the hash of the whole input: Fnv1a64 as FingerprintFile computes it).
  uint64_t bytes_read() const { return consumed_; }
  std::string content_hash() const { return hash_.ToString(); }
  const std::string& display() const { return display_; }

 private:
  static constexpr int kEof = -1;
  static constexpr int kBad = -2;  // ill-formed UTF-8; error_ says where

  int Peek();
  int Get();
  void TakeAsciiRun(std::string* field, int delim);
  bool Fill();
  Status Error(uint64_t line, uint64_t column, std::string_view what) const;

  std::unique_ptr<std::istream> owned_;  // set by Open
  std::istream* in_;
  std::string display_;
  CsvOptions options_;
  std::string buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  bool started_ = false;  // the byte-order mark check is done
  uint64_t consumed_ = 0;
  Fnv1a64 hash_;
  // Position of the next character.
  uint64_t line_ = 1;
  uint64_t column_ = 1;
  bool after_cr_ = false;
  // UTF-8 validation state: continuation bytes still expected, the range of the next one, and
  // where the sequence began.
  int utf8_need_ = 0;
  unsigned char utf8_lo_ = 0x80, utf8_hi_ = 0xBF;
  uint64_t utf8_line_ = 0, utf8_column_ = 0;
  Status error_;
  size_t width_ = 0;         // fields per record, from the first; 0 before it
  uint64_t width_line_ = 0;  // the line of the first record
};

// Appends `field` to `out`, quoted when it holds the delimiter, a quote, CR or LF (quotes
// doubled), or when it starts or ends with a space or a tab (which readers often trim).
void AppendCsvField(std::string* out, std::string_view field, char delimiter = ',');

// Appends one record ending with "\n". A record of one empty field is written `""`, so that it
// does not read back as a blank line.
void AppendCsvRecord(std::string* out, std::span<const std::string> fields, char delimiter = ',');
void AppendCsvRecord(std::string* out, std::span<const std::string_view> fields,
                     char delimiter = ',');

}  // namespace bmos::engine::handlers

#endif  // BMOS_ENGINE_HANDLERS_CSV_H_
