#include "engine/handlers/csv.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <sstream>

namespace bmos::engine::handlers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Parsed {
  std::vector<std::vector<std::string>> rows;
  std::vector<uint64_t> lines;
  Status error;
};

Parsed Parse(const std::string& text, CsvOptions options = {}) {
  std::istringstream in(text);
  CsvReader reader(&in, "data.csv", options);
  Parsed out;
  CsvRecord record;
  for (;;) {
    Result<bool> got = reader.Next(&record);
    if (!got.ok()) {
      out.error = got.status();
      break;
    }
    if (!*got) break;
    out.rows.push_back(record.fields);
    out.lines.push_back(record.line);
  }
  return out;
}

TEST(Csv, ReadsQuotedFieldsWithCommasQuotesAndLineBreaks) {
  const Parsed p = Parse(
      "name,note,n\n"
      "\"Gizmo, Deluxe\",\"12\"\" Monitor\",1\n"
      "plain,\"two\nlines\",2\n"
      "\"\",,3\n");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  ASSERT_EQ(p.rows.size(), 4u);
  EXPECT_THAT(p.rows[1], ElementsAre("Gizmo, Deluxe", "12\" Monitor", "1"));
  EXPECT_THAT(p.rows[2], ElementsAre("plain", "two\nlines", "2"));
  EXPECT_THAT(p.rows[3], ElementsAre("", "", "3"));
  // A record starts on the line after the line break inside the quotes of the one before.
  EXPECT_THAT(p.lines, ElementsAre(1, 2, 3, 5));
}

TEST(Csv, ReadsCrlfByteOrderMarkAndLastLineWithoutLineEnding) {
  const Parsed p = Parse(
      "\xEF\xBB\xBF"
      "a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n4,5");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  ASSERT_EQ(p.rows.size(), 4u);
  EXPECT_THAT(p.rows[0], ElementsAre("a", "b"));
  EXPECT_THAT(p.rows[2], ElementsAre("3", "x\r\ny"));
  EXPECT_THAT(p.rows[3], ElementsAre("4", "5"));
  EXPECT_THAT(p.lines, ElementsAre(1, 2, 3, 5));
}

TEST(Csv, ReadsLoneCarriageReturnsAsLineEndings) {
  const Parsed p = Parse("a,b\r1,2\r");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  EXPECT_EQ(p.rows.size(), 2u);
  EXPECT_THAT(p.lines, ElementsAre(1, 2));
}

TEST(Csv, SkipsBlankLinesButNotAQuotedEmptyField) {
  const Parsed p = Parse("a\n\n1\r\n\r\n\"\"\n2\n\n");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  ASSERT_EQ(p.rows.size(), 4u);
  EXPECT_THAT(p.rows[2], ElementsAre(""));
  EXPECT_THAT(p.lines, ElementsAre(1, 3, 5, 6));
}

TEST(Csv, ReadsChineseText) {
  const Parsed p = Parse("地区,评论\n华东,\"物流太慢，等了一个星期\"\n");
  ASSERT_TRUE(p.error.ok()) << p.error.ToString();
  EXPECT_THAT(p.rows[1], ElementsAre("华东", "物流太慢，等了一个星期"));
}

TEST(Csv, UnterminatedQuoteNamesWhereItOpened) {
  const Parsed p = Parse("a,b\n1,2\n3,\"open\n4,5\n");
  EXPECT_EQ(p.error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(p.error.message(),
              HasSubstr("data.csv: line 3, column 3: unterminated quoted field"));
}

TEST(Csv, QuoteInsideAnUnquotedFieldIsAnError) {
  const Parsed p = Parse("a,b\n1,12\" screen\n");
  EXPECT_EQ(p.error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(p.error.message(), HasSubstr("data.csv: line 2, column 5: quote inside an unquoted"));
}

TEST(Csv, TextAfterAClosingQuoteIsAnError) {
  const Parsed p = Parse("a,b\n\"x\"y,2\n");
  EXPECT_EQ(p.error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(p.error.message(),
              HasSubstr("line 2, column 4: unexpected character after the closing quote"));
}

TEST(Csv, ARecordWithTooManyFieldsNamesTheFirstExtraField) {
  const Parsed p = Parse("a,b,c\n1,2,3\n4,5,6,7\n");
  EXPECT_EQ(p.error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(p.error.message(),
              HasSubstr("data.csv: line 3, column 7: expected 3 fields (as in line 1), found 4"));
  EXPECT_EQ(p.rows.size(), 2u);
}

TEST(Csv, ARecordWithTooFewFieldsNamesWhereItEnds) {
  const Parsed p = Parse("a,b,c\n1,2\n");
  EXPECT_THAT(p.error.message(),
              HasSubstr("line 2, column 4: expected 3 fields (as in line 1), found 2"));
}

TEST(Csv, TheWidthComesFromTheFirstRecordAfterBlankLines) {
  const Parsed p = Parse("\n\na,b\n1\n");
  EXPECT_THAT(p.error.message(), HasSubstr("line 4, column 2: expected 2 fields (as in line 3)"));
}

TEST(Csv, RaggedRecordsPassWhenAllowed) {
  CsvOptions options;
  options.uniform_width = false;
  const Parsed p = Parse("a,b,c\n1,2\n", options);
  EXPECT_TRUE(p.error.ok());
  EXPECT_EQ(p.rows.size(), 2u);
}

TEST(Csv, InvalidUtf8NamesLineAndColumnInCharacters) {
  // Column counts characters: "华东" is two characters, so the bad byte is in column 4.
  const Parsed p = Parse("a,b\n华东,\xFFx\n");
  EXPECT_EQ(p.error.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(p.error.message(), HasSubstr("data.csv: line 2, column 4: invalid UTF-8 byte 0xff"));
  // Latin-1 text (é as the single byte E9) followed by ASCII.
  const Parsed latin1 = Parse("a\ncaf\xE9 au lait\n");
  EXPECT_THAT(latin1.error.message(), HasSubstr("line 2, column 4: invalid UTF-8"));
  // An overlong encoding of '/' and a surrogate are ill-formed too.
  EXPECT_FALSE(Parse("a\n\xC0\xAF\n").error.ok());
  EXPECT_FALSE(Parse("a\n\xED\xA0\x80\n").error.ok());
  // A sequence cut off by a delimiter or a line ending.
  EXPECT_THAT(Parse("a,b\nx\xE5,y\n").error.message(),
              HasSubstr("line 2, column 2: invalid UTF-8 byte sequence"));
  EXPECT_THAT(Parse("a\nx\xE5\n").error.message(),
              HasSubstr("line 2, column 2: invalid UTF-8 byte sequence"));
  // A sequence cut off by the end of the file.
  const Parsed cut = Parse("a\nok\xE5\x8D");
  EXPECT_THAT(cut.error.message(), HasSubstr("line 2, column 3: incomplete UTF-8 sequence"));
}

TEST(Csv, WriterQuotesWhatNeedsQuotingAndReadsBack) {
  std::string out;
  const std::vector<std::string> fields = {"plain", "a,b", "say \"hi\"", "two\nlines", " pad", ""};
  AppendCsvRecord(&out, std::span<const std::string>(fields));
  EXPECT_EQ(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" pad\",\n");
  const Parsed p = Parse(out);
  ASSERT_TRUE(p.error.ok());
  EXPECT_EQ(p.rows[0], fields);
}

TEST(Csv, WriterWritesALoneEmptyFieldAsQuotes) {
  std::string out;
  const std::vector<std::string> one = {""};
  AppendCsvRecord(&out, std::span<const std::string>(one));
  EXPECT_EQ(out, "\"\"\n");
}

TEST(Csv, RandomRecordsRoundTrip) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"a", ",", "\"", "\n", "\r\n", " ", "华", "1.5", ""};
  for (int round = 0; round < 50; ++round) {
    std::vector<std::vector<std::string>> records;
    std::string text;
    const size_t width = 1 + rng() % 5;
    for (int r = 0; r < 20; ++r) {
      std::vector<std::string> rec;
      for (size_t c = 0; c < width; ++c) {
        std::string f;
        const size_t n = rng() % 4;
        for (size_t k = 0; k < n; ++k) f += pieces[rng() % pieces.size()];
        rec.push_back(f);
      }
      AppendCsvRecord(&text, std::span<const std::string>(rec));
      records.push_back(rec);
    }
    const Parsed p = Parse(text);
    ASSERT_TRUE(p.error.ok()) << p.error.ToString() << "\n" << text;
    ASSERT_EQ(p.rows, records) << text;
  }
}

TEST(Csv, OpenReportsAMissingFile) {
  Result<std::unique_ptr<CsvReader>> r = CsvReader::Open("/nonexistent/bmos/x.csv", "x.csv");
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

TEST(Csv, HashCoversEveryByte) {
  std::istringstream in("a,b\n1,2\n");
  CsvReader reader(&in, "h.csv");
  CsvRecord record;
  while (reader.Next(&record).value()) {
  }
  Fnv1a64 expected;
  expected.Update("a,b\n1,2\n");
  EXPECT_EQ(reader.content_hash(), expected.ToString());
  EXPECT_EQ(reader.bytes_read(), 8u);
}

}  // namespace
}  // namespace bmos::engine::handlers
