// What a compose file may use, and the file the tool is given: the file read
// strictly once (duplicates, anchors, merges, tags and ambiguous scalars
// refused with their line), every key against an allow-list with its type,
// each privileged option refused unless control.json lists it for the
// project, host paths judged after compose's own resolution and looked at
// again for links when the file is applied, and a canonical file written from
// what was checked.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "control/compose_policy.hpp"
#include "control/permissions.hpp"
#include "temp_dir.hpp"

namespace secbox::control {
namespace {

namespace fs = std::filesystem;

const std::string kDir = "/var/lib/secbox/compose/frigate";

Result<CheckedCompose> check(const std::string& service_body, const ComposeAllowance& a = {}) {
  return check_compose("services:\n  cam:\n    image: localhost/frigate:1\n" + service_body, kDir,
                       a, "frigate");
}

TEST(ComposePolicy, EachPrivilegedOptionIsRefusedNamingTheServiceAndTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"    privileged: true\n", "privileged"},
      {"    network_mode: host\n", "network_mode"},
      {"    network_mode: \"ns:/proc/1/ns/net\"\n", "network_mode"},
      {"    pid: host\n", "pid"},
      {"    ipc: host\n", "ipc"},
      {"    userns_mode: host\n", "userns_mode"},
      {"    cap_add: [SYS_ADMIN]\n", "cap_add"},
      {"    devices: [\"/dev/bus/usb:/dev/bus/usb\"]\n", "devices"},
      {"    security_opt: [\"seccomp=unconfined\"]\n", "security_opt"},
      {"    sysctls: {net.ipv4.ip_forward: 1}\n", "sysctls"},
      {"    logging: {driver: k8s-file, options: {path: /etc/x}}\n", "logging"},
      {"    volumes: [\"/:/host\"]\n", "volumes"},
      {"    volumes:\n      - type: bind\n        source: /etc\n        target: /x\n", "volumes"},
      {"    volumes: [\"../../../../:/up\"]\n", "volumes"},
      {"    env_file: /etc/secbox/secbox.env\n", "env_file"},
      {"    network_mode: ${NET}\n", "network_mode"},
      {"    secrets: [s]\nsecrets:\n  s:\n    file: /etc/shadow\n", "secrets"},
      {"    configs: [c]\nconfigs:\n  c:\n    file: /\n", "configs"},
  };
  for (const auto& [body, key] : cases) {
    auto r = check(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, Errc::forbidden) << r.error().message;
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
    if (std::string(body).find("secrets:") == std::string::npos &&
        std::string(body).find("configs:") == std::string::npos) {
      EXPECT_NE(r.error().message.find("service cam"), std::string::npos) << r.error().message;
    }
    ComposeAllowance a;
    a.allow.insert(key);
    EXPECT_TRUE(check(body, a)) << body;
  }
}

TEST(ComposePolicy, OrdinaryFilesAndTheProjectsOwnFolderNeedNothing) {
  auto r = check_compose(
      "services:\n  cam:\n    image: localhost/frigate:1\n"
      "    privileged: false\n"
      "    network_mode: \"service:other\"\n"
      "    shm_size: 256mb\n"
      "    volumes: [\"./config:/config\", \"data:/media\", \"/cache\"]\n"
      "    env_file: [./frigate.env]\n"
      "    environment:\n      PLUS: ${FRIGATE_PLUS}\n"
      "  other:\n    image: localhost/relay:1\n",
      kDir, {}, "frigate");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r.value().host_paths.size(), 2u);
  EXPECT_EQ(r.value().host_paths[0].path, kDir + "/config");
  EXPECT_EQ(r.value().host_paths[0].allowed_by, kDir);
  EXPECT_EQ(r.value().host_paths[1].path, kDir + "/frigate.env");
  // Relative paths are written out as the policy resolved them.
  EXPECT_NE(r.value().canonical.find("\"" + kDir + "/config:/config\""), std::string::npos)
      << r.value().canonical;
  EXPECT_NE(r.value().canonical.find("\"${FRIGATE_PLUS}\""), std::string::npos);
}

TEST(ComposePolicy, AnchorsMergesDuplicatesAndTagsAreRefusedWithTheirLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"x-base: &base\n  privileged: true\nservices:\n  cam:\n    <<: *base\n    image: x\n",
       "line 1: an anchor"},
      {"services:\n  cam:\n    image: x\n    privileged: false\n    privileged: true\n",
       "line 5: the key \"privileged\" is given twice"},
      {"services:\n  cam:\n    image: x\n    privileged: !!bool true\n", "line 4: a YAML tag"},
      {"services:\n  cam:\n    image: x\n    restart: no\n", "line 4: \"no\" unquoted"},
      {"services:\n  cam:\n    image: x\n    user: 0755\n", "line 4: \"0755\" unquoted"},
      {"services:\n  cam:\n    image: x\n---\nservices: {}\n", "a second YAML document"},
      {"services:\n  cam:\n    image: x\n    labels: {on: x}\n", "\"on\" unquoted"},
      {"services:\n  cam:\n    image: x\n    labels: {1: x}\n", "a key that is not text"},
      {"services:\n  cam:\n    image: x\n    command: \"a\\u0000b\"\n", "control character"},
  };
  for (const auto& [yaml, expected] : cases) {
    auto r = check_compose(yaml, kDir, {}, "frigate");
    ASSERT_FALSE(r) << yaml;
    EXPECT_EQ(r.error().code, Errc::invalid) << r.error().message;
    EXPECT_NE(r.error().message.find(expected), std::string::npos) << r.error().message;
  }
}

TEST(ComposePolicy, UnknownKeysAndWrongTypesAreRefusedByName) {
  auto unknown = check("    runtime: /tmp/evil\n");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("\"runtime\""), std::string::npos)
      << unknown.error().message;
  auto scalar = check("    volumes: /:/host\n");
  ASSERT_FALSE(scalar);
  EXPECT_NE(scalar.error().message.find("volumes must be a list"), std::string::npos)
      << scalar.error().message;
  auto string_bool = check("    privileged: \"false\"\n");
  ASSERT_FALSE(string_bool);
  EXPECT_NE(string_bool.error().message.find("must be true or false"), std::string::npos);
  EXPECT_FALSE(check("    privileged: ${PRIV}\n", {{"privileged"}, std::nullopt}))
      << "a boolean from a variable is text, whatever it holds";
  EXPECT_FALSE(
      check_compose("include: [/etc/other.yaml]\nservices:\n  a:\n    image: x\n", kDir, {}, "p"));
  EXPECT_FALSE(check("    extends:\n      file: /etc/x.yaml\n      service: y\n"));
  auto device = check_compose(
      "services:\n  cam:\n    image: x\n    volumes: [\"root:/host\"]\nvolumes:\n  root:\n    "
      "driver_opts:\n"
      "      type: none\n      o: bind\n      device: /\n",
      kDir, {}, "frigate");
  ASSERT_FALSE(device);
  EXPECT_NE(device.error().message.find("volume root"), std::string::npos)
      << device.error().message;
}

TEST(ComposePolicy, AllowedMountsAreHostPathsAndWhatLiesUnderThem) {
  ComposeAllowance a;
  a.allow = {"volumes", "devices"};
  a.mounts = std::vector<std::string>{"/etc/localtime", "/media/frigate/", "/dev/bus/usb"};
  EXPECT_TRUE(check(
      "    volumes: [\"/etc/localtime:/etc/localtime:ro\", \"/media/frigate/clips:/clips\"]\n", a));
  EXPECT_TRUE(check("    devices: [\"/dev/bus/usb/001:/dev/bus/usb/001\"]\n", a));
  EXPECT_FALSE(check("    devices: [\"/dev/sda:/dev/sda\"]\n", a));
  auto outside = check("    volumes: [\"/media/frigate/../../etc:/x\"]\n", a);
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message.find("not under compose.projects.frigate.mounts"),
            std::string::npos)
      << outside.error().message;
  EXPECT_FALSE(check("    volumes: [\"/media/frigatex:/x\"]\n", a));
  EXPECT_FALSE(check("    volumes: [\"${MEDIA}:/x\"]\n", a))
      << "a path from a variable cannot be judged";
  EXPECT_FALSE(check("    volumes: [\"~/.ssh:/k\"]\n", a)) << "a home folder is nobody's to allow";
}

TEST(ComposePolicy, TheCanonicalFileIsReadBackAsItWasChecked) {
  const std::string yaml =
      "x-note: left out\nversion: \"3.8\"\nservices:\n  cam:\n    image: localhost/frigate:1\n"
      "    command: [\"/bin/sh\", \"-c\", \"echo \\\"caf\\u00e9 \\U0001F600\\\"\\n\\tdone\"]\n"
      "    environment: {A: 1, B: 2.5, C: true, D: null, E: \"on\"}\n"
      "    ports: [\"8080:80\", 5000]\n"
      "networks:\n  default:\n    internal: true\n";
  auto first = check_compose(yaml, kDir, {}, "frigate");
  ASSERT_TRUE(first) << first.error().message;
  const std::string& canonical = first.value().canonical;
  EXPECT_EQ(canonical.find("x-note"), std::string::npos);
  EXPECT_NE(canonical.find("\"E\": \"on\""), std::string::npos) << canonical;
  EXPECT_NE(canonical.find("\"A\": 1,"), std::string::npos) << canonical;
  EXPECT_NE(canonical.find("\\u00E9 \\U0001F600"), std::string::npos) << canonical;
  for (unsigned char c : canonical) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7F)) << int(c);
  auto again = check_compose(canonical, kDir, {}, "frigate");
  ASSERT_TRUE(again) << again.error().message << "\n" << canonical;
  EXPECT_EQ(again.value().canonical, canonical);
}

TEST(ComposePolicy, ServicesUpStartsLeaveOutProfilesAndZeroReplicas) {
  auto s = check_compose(
      "services:\n  a:\n    image: x\n    healthcheck: {test: [CMD, 'true']}\n"
      "  b:\n    image: x\n    profiles: [debug]\n"
      "  c:\n    image: x\n    deploy: {replicas: 0}\n"
      "  d:\n    image: x\n    healthcheck: {disable: true}\n",
      kDir, {}, "p");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s.value().services.size(), 2u);
  EXPECT_EQ(s.value().services[0].name, "a");
  EXPECT_TRUE(s.value().services[0].has_healthcheck);
  EXPECT_EQ(s.value().services[1].name, "d");
  EXPECT_FALSE(s.value().services[1].has_healthcheck);
  EXPECT_FALSE(check_compose(std::string(200000, '['), kDir, {}, "p"));
  EXPECT_FALSE(check_compose("services: {}\n", kDir, {}, "p"));
  EXPECT_FALSE(check_compose("services:\n  a: 3\n", kDir, {}, "p"));
}

// tests/golden/compose-hostile: each file says on its first line whether the
// box refuses it ("# refused: why") or accepts it; what it accepts, parsed
// again from the canonical file, is accepted again and holds only
// allow-listed keys.
TEST(ComposePolicy, TheHostileCorpusIsRefusedAtWrite) {
  const fs::path corpus = fs::path(SECBOX_TEST_SOURCE_DIR) / "tests/golden/compose-hostile";
  int refused = 0;
  int accepted = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const std::string yaml = text.str();
    const bool expect_refused = yaml.rfind("# refused:", 0) == 0;
    ASSERT_TRUE(expect_refused || yaml.rfind("# accepted:", 0) == 0) << entry.path();
    auto r = check_compose(yaml, kDir, {}, "booth");
    if (expect_refused) {
      EXPECT_FALSE(r) << entry.path() << " was accepted:\n" << (r ? r.value().canonical : "");
      if (!r) {
        EXPECT_EQ(r.error().message.rfind("line ", 0), 0u)
            << entry.path() << ": " << r.error().message;
      }
      ++refused;
    } else {
      ASSERT_TRUE(r) << entry.path() << ": " << r.error().message;
      auto again = check_compose(r.value().canonical, kDir, {}, "booth");
      ASSERT_TRUE(again) << entry.path();
      EXPECT_EQ(again.value().canonical, r.value().canonical);
      ++accepted;
    }
  }
  EXPECT_GE(refused, 40);
  EXPECT_GE(accepted, 4);
  std::printf("# compose corpus: %d refused, %d accepted\n", refused, accepted);
}

// An earlier container of the project can turn ./data into a link to `/`:
// the path is looked at again, without following links, just before the tool
// mounts it.
TEST(ComposePolicy, ALinkPlantedInTheProjectFolderIsRefusedAtApply) {
  testing::TempDir dir;
  const std::string project = dir.file("compose/booth");
  fs::create_directories(project + "/data");
  auto r = check_compose(
      "services:\n  a:\n    image: x\n    volumes: [\"./data/root:/host\", \"./new/deep:/n\"]\n",
      project, {}, "booth");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(check_host_paths_now(r.value().host_paths))
      << "a real folder, and one the tool will make";
  ASSERT_EQ(::symlink("/", (project + "/data/root").c_str()), 0);
  auto planted = check_host_paths_now(r.value().host_paths);
  ASSERT_FALSE(planted);
  EXPECT_EQ(planted.error().code, Errc::forbidden);
  EXPECT_NE(planted.error().message.find(project + "/data/root is a link"), std::string::npos)
      << planted.error().message;
  fs::remove(project + "/data/root");
  fs::remove_all(project + "/data");
  ASSERT_EQ(::symlink("/etc", (project + "/data").c_str()), 0);
  EXPECT_FALSE(check_host_paths_now(r.value().host_paths)) << "a link higher up";
}

TEST(ComposePolicy, ControlJsonNamesTheAllowancePerProject) {
  auto p = Permissions::parse(
      R"({"compose": {"projects": {"frigate": {"allow": ["devices", "volumes", "logging"], "mounts": ["/dev/bus/usb"]}}}})");
  ASSERT_TRUE(p) << p.error().message;
  auto frigate = p.value().compose_allowance("frigate");
  EXPECT_EQ(frigate.allow.count("devices"), 1u);
  EXPECT_EQ(frigate.allow.count("logging"), 1u);
  ASSERT_TRUE(frigate.mounts);
  EXPECT_EQ(frigate.mounts->front(), "/dev/bus/usb");
  EXPECT_TRUE(p.value().compose_allowance("relay").allow.empty());
  for (const char* bad :
       {R"({"compose": {"projects": {"a": {"allow": ["root"]}}}})",
        R"({"compose": {"projects": {"a": {"mounts": ["relative"]}}}})",
        R"({"compose": {"projects": {"a": {"names": []}}}})", R"({"compose": {"allow": []}})"}) {
    auto r = Permissions::parse(bad);
    EXPECT_FALSE(r) << bad;
  }
}

}  // namespace
}  // namespace secbox::control
