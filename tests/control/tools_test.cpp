// Registered commands: a tool file's commands, each argument matched whole
// by its pattern and substituted into the argument vector (never a shell);
// a bad file named with its field; unknown tools and bad values refused
// without quoting the value.
#include "control/tools.hpp"

#include <gtest/gtest.h>

#include "temp_dir.hpp"

namespace secbox::control {
namespace {

using json = nlohmann::json;
using secbox::testing::TempDir;

constexpr const char* kPing =
    R"({"commands": {"host": {"argv": ["/usr/bin/ping", "-c", "1", "{host}"],
                                                      "args": {"host": "[a-z0-9.-]{1,64}"}, "timeoutS": 5}}})";

TEST(Tools, ArgumentsAreMatchedWholeAndSubstituted) {
  TempDir dir;
  dir.write("ping.json", kPing);
  dir.write("broken.json", R"({"commands": {"x": {"argv": ["relative/path"]}}})");
  auto loaded = load_tools(dir.path());
  ASSERT_EQ(loaded.tools.count("ping"), 1u);
  EXPECT_EQ(loaded.tools.count("broken"), 0u);
  ASSERT_EQ(loaded.problems.size(), 1u);
  EXPECT_NE(loaded.problems[0].find("broken.json"), std::string::npos) << loaded.problems[0];

  std::chrono::milliseconds timeout{0};
  auto argv = build_argv(loaded.tools, "ping", "host", json{{"host", "gate.local"}}, &timeout);
  ASSERT_TRUE(argv) << argv.error().message;
  EXPECT_EQ(argv.value(), (std::vector<std::string>{"/usr/bin/ping", "-c", "1", "gate.local"}));
  EXPECT_EQ(timeout, std::chrono::seconds(5));

  for (const json& bad :
       {json{{"host", "gate.local; reboot"}}, json{{"host", "-f"}}, json{{"host", "a\nb"}},
        json{{"host", std::string(300, 'a')}}, json{{"host", 7}}, json::object()}) {
    auto r = build_argv(loaded.tools, "ping", "host", bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().code, Errc::invalid) << bad.dump();
    EXPECT_EQ(r.error().message.find("reboot"), std::string::npos) << "the value is never quoted";
  }
  EXPECT_EQ(build_argv(loaded.tools, "nope", "host", json{{"host", "a"}}).error().code,
            Errc::not_found);
  EXPECT_EQ(build_argv(loaded.tools, "ping", "nope", json{{"host", "a"}}).error().code,
            Errc::not_found);
}

TEST(Tools, InvalidFilesAreRefusedNamingTheField) {
  struct Case {
    const char* text;
    const char* names;
  };
  for (const auto& c : std::vector<Case>{
           {"not json", "not valid JSON"},
           {R"({"commands": {}})", "non-empty \"commands\""},
           {R"({"commands": {"x": {"argv": ["sh", "-c", "id"]}}})",
            "argv[0] must be an absolute path"},
           {R"({"commands": {"x": {"argv": ["/bin/echo", "{who}"]}}})",
            "placeholder {who} has no pattern"},
           {R"({"commands": {"x": {"argv": ["/bin/echo"], "args": {"a": "x"}}}})",
            "args.a is declared but not used"},
           {R"({"commands": {"x": {"argv": ["/bin/echo", "{a}"], "args": {"a": "(["}}}})",
            "not a valid regular"},
           {R"({"commands": {"x": {"argv": ["/bin/echo"], "timeoutS": 0}}})", "timeoutS"},
           {R"({"commands": {"X Y": {"argv": ["/bin/echo"]}}})", "command's name"},
       }) {
    auto t = parse_tool("net", c.text);
    ASSERT_FALSE(t) << c.text;
    EXPECT_NE(t.error().message.find(c.names), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.rfind("net.json: ", 0), 0u);
  }
  auto ok = parse_tool(
      "net",
      R"({"commands": {"x": {"argv": ["/bin/echo", "--host={h}"], "args": {"h": "[a-z]+"}}}})");
  ASSERT_TRUE(ok) << ok.error().message;
  ToolSet set{{"net", ok.value()}};
  auto argv = build_argv(set, "net", "x", {{"h", "gw"}});
  ASSERT_TRUE(argv);
  EXPECT_EQ(argv.value(), (std::vector<std::string>{"/bin/echo", "--host=gw"}));
  // The whole value must match, not a part of it.
  EXPECT_EQ(build_argv(set, "net", "x", {{"h", "gw;id"}}).error().code, Errc::invalid);
  EXPECT_EQ(build_argv(set, "net", "x", {{"h", 3}}).error().code, Errc::invalid);
}

}  // namespace
}  // namespace secbox::control
