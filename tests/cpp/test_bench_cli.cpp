// bench/common/bench_cli.h: the argument reading of the small benchmark programs and what they write
// beside their figures (the command line, the date, JSON strings).
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "bench_cli.h"

namespace {

struct Argv {
  explicit Argv(std::vector<std::string> a) : args(std::move(a)) {
    for (auto& s : args) ptrs.push_back(s.data());
  }
  int argc() const { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> args;
  std::vector<char*> ptrs;
};

bench_cli::Parsed parse(Argv& a, std::string* out, std::string* only, std::string* command) {
  return bench_cli::parse_value_options("prog", a.argc(), a.argv(), {{"--out", out}, {"--only", only}}, "usage: prog\n", command);
}

TEST(BenchCli, ReadsEachOptionsValueAndKeepsTheCommandLine) {
  Argv a({"prog", "--only", "gelu_quantize@4096x3072", "--out", "/tmp/r"});
  std::string out = ".", only, command;
  EXPECT_EQ(parse(a, &out, &only, &command), bench_cli::Parsed::kRun);
  EXPECT_EQ(out, "/tmp/r");
  EXPECT_EQ(only, "gelu_quantize@4096x3072");
  EXPECT_EQ(command, "prog --only gelu_quantize@4096x3072 --out /tmp/r");
}

TEST(BenchCli, LeavesDefaultsWhereAnOptionIsNotGiven) {
  Argv a({"prog"});
  std::string out = ".", only = "default", command;
  EXPECT_EQ(parse(a, &out, &only, &command), bench_cli::Parsed::kRun);
  EXPECT_EQ(out, ".");
  EXPECT_EQ(only, "default");
  EXPECT_EQ(command, "prog");
}

TEST(BenchCli, RefusesUnknownArgumentsAndOptionsWithoutTheirValue) {
  std::string out = ".", only, command;
  Argv unknown({"prog", "--outt", "x"});
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse(unknown, &out, &only, &command), bench_cli::Parsed::kBadArgument);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("unknown argument '--outt'"), std::string::npos);

  Argv missing({"prog", "--only", "x", "--out"});
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse(missing, &out, &only, &command), bench_cli::Parsed::kBadArgument);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("--out needs a value"), std::string::npos);
  EXPECT_EQ(out, ".");  // nothing half-read into the option
}

TEST(BenchCli, HelpPrintsTheUsageAndStops) {
  Argv a({"prog", "--out", "x", "-h", "--bogus"});
  std::string out = ".", only, command;
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse(a, &out, &only, &command), bench_cli::Parsed::kHelpShown);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "usage: prog\n");
}

TEST(BenchCli, QuotesJsonStringsAndDatesInUtc) {
  EXPECT_EQ(bench_cli::json_quote("a \"b\" c\\d"), "\"a \\\"b\\\" c\\\\d\"");
  EXPECT_TRUE(std::regex_match(bench_cli::utc_now(), std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));
}

}  // namespace
