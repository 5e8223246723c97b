#include <gtest/gtest.h>

#include <chrono>

#include "envfile/env_file.hpp"

namespace secbox::envfile {
namespace {

EnvFile parsed(std::string_view text) {
  auto r = parse(text, "t.env");
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? r.value() : EnvFile{};
}

std::string error_of(std::string_view text) {
  auto r = parse(text, "t.env");
  EXPECT_FALSE(r) << "parsed unexpectedly";
  return r ? "" : r.error().message;
}

TEST(EnvParse, PlainAssignmentsCommentsAndBlankLines) {
  auto env = parsed("# a comment\n; another\n\nA=1\n  B = two words  \nC=\n");
  ASSERT_EQ(env.entries().size(), 3u);
  EXPECT_EQ(env.get("A"), "1");
  EXPECT_EQ(env.get("B"), "two words");
  EXPECT_EQ(env.get("C"), "");
  EXPECT_FALSE(env.has_nonempty("C"));
  EXPECT_FALSE(env.get("D").has_value());
}

TEST(EnvParse, ExportPrefixIsAccepted) {
  auto env = parsed("export DEVICE_ID=dev_1\nexport\tX=y\nexporter=3\n");
  EXPECT_EQ(env.get("DEVICE_ID"), "dev_1");
  EXPECT_EQ(env.get("X"), "y");
  EXPECT_EQ(env.get("exporter"), "3");
}

TEST(EnvParse, SingleQuotesAreLiteral) {
  auto env = parsed("A='a \\n $B \"x\"'\nB='  spaced  '\n");
  EXPECT_EQ(env.get("A"), "a \\n $B \"x\"");
  EXPECT_EQ(env.get("B"), "  spaced  ");
}

TEST(EnvParse, DoubleQuotesHonourShellEscapesOnly) {
  auto env = parsed(R"(A="q\"b\\s\$d\`t\n")"
                    "\n");
  EXPECT_EQ(env.get("A"), "q\"b\\s$d`t\\n");
}

TEST(EnvParse, QuotedPiecesConcatenateAsInSystemd) {
  auto env = parsed("A='one' \"two\"\nB=x\"y\"\n");
  EXPECT_EQ(env.get("A"), "onetwo");
  EXPECT_EQ(env.get("B"), "x\"y\"");  // a quote after bare text is literal
}

TEST(EnvParse, BackslashEscapesAndContinuationsOutsideQuotes) {
  auto env = parsed("A=a\\ b\\\\c\nB=first\\\nsecond\nC=end\n");
  EXPECT_EQ(env.get("A"), "a b\\c");
  EXPECT_EQ(env.get("B"), "firstsecond");
  EXPECT_EQ(env.get("C"), "end");
}

TEST(EnvParse, TrailingSpacesTrimmedUnlessEscapedOrQuoted) {
  auto env = parsed("A=v  \t\nB=v\\ \nC=\"v  \"  \n");
  EXPECT_EQ(env.get("A"), "v");
  EXPECT_EQ(env.get("B"), "v ");
  EXPECT_EQ(env.get("C"), "v  ");
}

TEST(EnvParse, CrlfLineEndings) {
  auto env = parsed("A=1\r\nB=\"two\"\r\n");
  EXPECT_EQ(env.get("A"), "1");
  EXPECT_EQ(env.get("B"), "two");
}

TEST(EnvParse, LaterAssignmentWinsAndKeepsFirstPosition) {
  auto env = parsed("A=1\nB=2\nA=3\n");
  ASSERT_EQ(env.entries().size(), 2u);
  EXPECT_EQ(env.entries()[0].key, "A");
  EXPECT_EQ(env.entries()[0].value, "3");
  EXPECT_EQ(env.entries()[0].line, 3);
}

TEST(EnvParse, HashInsideValueIsNotAComment) {
  auto env = parsed("A=pa#ss\n");
  EXPECT_EQ(env.get("A"), "pa#ss");
}

TEST(EnvParse, CommentEndingInBackslashContinuesAsInSystemd) {
  auto env = parsed("# note \\\nHIDDEN=1\nA=2\n");
  EXPECT_FALSE(env.get("HIDDEN").has_value());
  EXPECT_EQ(env.get("A"), "2");
}

TEST(EnvParse, NoTrailingNewline) { EXPECT_EQ(parsed("A=1").get("A"), "1"); }

TEST(EnvParse, UnterminatedDoubleQuoteNamesLineAndKeyNotValue) {
  auto msg = error_of("A=1\nSECRET_KEY=\"hunter2-secret\n");
  EXPECT_NE(msg.find("t.env line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SECRET_KEY"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
}

TEST(EnvParse, UnterminatedSingleQuote) {
  auto msg = error_of("\n\nA='abc");
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
}

TEST(EnvParse, QuoteSpanningLinesIsRefused) {
  // systemd would read a two-line value; a value never contains a newline.
  auto msg = error_of("A=\"first\nsecond\"\n");
  EXPECT_NE(msg.find("line 1"), std::string::npos) << msg;
}

TEST(EnvParse, LineWithoutEqualsIsAnError) {
  auto msg = error_of("A=1\nJUSTAKEY\n");
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("JUSTAKEY"), std::string::npos) << msg;
}

TEST(EnvParse, InvalidKeysAreErrors) {
  EXPECT_NE(error_of("1A=x\n").find("not a valid variable name"), std::string::npos);
  EXPECT_NE(error_of("A-B=x\n").find("line 1"), std::string::npos);
  EXPECT_NE(error_of("=x\n").find("no key"), std::string::npos);
}

TEST(EnvParse, NulByteIsAnErrorWithItsLine) {
  std::string text = "A=1\nB=x";
  text.push_back('\0');
  text += "y\n";
  auto msg = error_of(text);
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NUL"), std::string::npos) << msg;
}

TEST(EnvParse, InvalidUtf8IsAnError) {
  EXPECT_NE(error_of("A=\xff\xfe\n").find("not UTF-8"), std::string::npos);
  EXPECT_NE(error_of("A=\xc0\xaf\n").find("not UTF-8"), std::string::npos);      // overlong
  EXPECT_NE(error_of("A=\xed\xa0\x80\n").find("not UTF-8"), std::string::npos);  // surrogate
  EXPECT_NE(error_of("K\xff=1\n").find("line 1"), std::string::npos);
  EXPECT_EQ(parsed("A=ñandú 漢字 🚪\n").get("A"), "ñandú 漢字 🚪");
}

TEST(EnvParse, OneMebibyteLineParses) {
  std::string value(1 << 20, 'x');
  auto env = parsed("BIG=" + value + "\nNEXT=1\n");
  EXPECT_EQ(env.get("BIG")->size(), value.size());
  EXPECT_EQ(env.get("NEXT"), "1");
}

TEST(EnvParse, OneMebibyteUnterminatedQuoteIsAnError) {
  std::string text = "BIG=\"" + std::string(1 << 20, 'y');
  EXPECT_NE(error_of(text).find("line 1"), std::string::npos);
}

TEST(EnvParse, ManyShortLines) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "K" + std::to_string(i) + "=v\n";
  auto env = parsed(text);
  EXPECT_EQ(env.entries().size(), 20000u);
}

}  // namespace
}  // namespace secbox::envfile
