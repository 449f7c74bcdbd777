#include "engine/handlers/internal/memory_themes.h"

#include <algorithm>
#include <unordered_set>

#include "engine/handlers/internal/utf8.h"

namespace bmos::engine::handlers::internal {

namespace {

// A small English stop-word list: articles, pronouns, auxiliaries, prepositions, fillers.
const std::unordered_set<std::string_view>& StopWords() {
  static const std::unordered_set<std::string_view> words = {
      "a",     "about", "after", "again",   "all",   "also",   "am",      "an",     "and",
      "any",   "are",   "as",    "at",      "be",    "been",   "before",  "being",  "both",
      "but",   "by",    "can",   "could",   "did",   "do",     "does",    "doing",  "each",
      "even",  "for",   "from",  "get",     "got",   "had",    "has",     "have",   "having",
      "he",    "her",   "here",  "him",     "his",   "how",    "i",       "if",     "in",
      "into",  "is",    "it",    "its",     "it's",  "i'm",    "i've",    "just",   "me",
      "more",  "most",  "much",  "my",      "of",    "on",     "once",    "only",   "or",
      "other", "our",   "out",   "over",    "quite", "really", "she",     "so",     "some",
      "such",  "than",  "that",  "the",     "their", "them",   "then",    "there",  "these",
      "they",  "this",  "those", "through", "to",    "too",    "up",      "us",     "very",
      "was",   "we",    "were",  "what",    "when",  "which",  "while",   "who",    "will",
      "with",  "would", "you",   "your",    "yours", "we're",  "they're", "you're", "should",
      "shall", "may",   "might", "must",    "been",  "ever",   "still",   "yet",    "because"};
  return words;
}

const std::unordered_set<std::string_view>& Negations() {
  static const std::unordered_set<std::string_view> words = {
      "not",    "no",    "never", "don't",  "doesn't",  "didn't",  "isn't", "wasn't",
      "aren't", "won't", "can't", "cannot", "couldn't", "nothing", "nor"};
  return words;
}

// Function characters that rarely carry a theme in Chinese.
bool IsCjkStop(char32_t cp) {
  static constexpr char32_t kStops[] = {U'的', U'了', U'是', U'我', U'你', U'他', U'她', U'它',
                                        U'们', U'这', U'那', U'也', U'都', U'就', U'和', U'在',
                                        U'吗', U'呢', U'吧', U'啊', U'个', U'把', U'被', U'给',
                                        U'又', U'还', U'着', U'过', U'得', U'地', U'呀', U'哦'};
  return std::find(std::begin(kStops), std::end(kStops), cp) != std::end(kStops);
}

bool IsWordChar(char32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
         (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) ||  // Latin letters
         (cp >= 0x370 && cp <= 0x52F);                               // Greek, Cyrillic
}

// Punctuation that ends a clause (ASCII and CJK / full-width forms).
bool EndsClause(char32_t cp) {
  switch (cp) {
    case '.':
    case ',':
    case ';':
    case ':':
    case '!':
    case '?':
    case '(':
    case ')':
    case '"':
    case '\n':
    case '\r':
    case U'，':
    case U'。':
    case U'！':
    case U'？':
    case U'；':
    case U'：':
    case U'、':
    case U'（':
    case U'）':
    case U'“':
    case U'”':
      return true;
    default:
      return false;
  }
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

class Collector {
 public:
  void Add(std::string text, bool cjk) {
    if (seen_.insert(text).second) out_.push_back({std::move(text), cjk});
  }
  std::vector<Theme> Take() { return std::move(out_); }

 private:
  std::unordered_set<std::string> seen_;
  std::vector<Theme> out_;
};

}  // namespace

std::vector<Theme> ExtractThemes(std::string_view text) {
  Collector themes;
  std::string word;           // the word being read
  std::string last;           // the previous kept word of this clause ("" = none)
  std::vector<char32_t> run;  // the CJK run being read
  const auto end_word = [&] {
    if (word.empty()) return;
    std::string w = AsciiLower(word);
    word.clear();
    // Apostrophes only join words ("don't"); strip them at the ends.
    while (!w.empty() && w.front() == '\'') w.erase(w.begin());
    while (!w.empty() && w.back() == '\'') w.pop_back();
    if (w.empty() || AllDigits(w)) return;
    if (Negations().count(w) > 0) {
      last = w;
      return;
    }
    if (CountChars(w) < 2 || StopWords().count(w) > 0) return;
    themes.Add(w, false);
    if (!last.empty()) themes.Add(last + " " + w, false);
    last = std::move(w);
  };
  const auto end_run = [&] {
    for (size_t i = 0; i + 1 < run.size(); ++i) {
      if (IsCjkStop(run[i]) || IsCjkStop(run[i + 1])) continue;
      std::string bigram;
      AppendUtf8(&bigram, run[i]);
      AppendUtf8(&bigram, run[i + 1]);
      themes.Add(std::move(bigram), true);
    }
    run.clear();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const char32_t cp = DecodeUtf8(text, &pos);
    if (IsCjk(cp)) {
      end_word();
      last.clear();  // a CJK run separates words
      run.push_back(cp);
      continue;
    }
    end_run();
    if (IsWordChar(cp) || (cp == '\'' && !word.empty())) {
      word.append(text.substr(start, pos - start));
      continue;
    }
    end_word();
    if (EndsClause(cp)) last.clear();
  }
  end_word();
  end_run();
  return themes.Take();
}

}  // namespace bmos::engine::handlers::internal
