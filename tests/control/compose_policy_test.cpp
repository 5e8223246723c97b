// What a compose file may use beyond an ordinary container: each privileged
// option refused unless control.json lists it for the project, the service
// and the key named; host paths judged after compose's own resolution
// (relative to the project's folder) and against the allowed mounts.
#include <gtest/gtest.h>

#include "control/compose_policy.hpp"
#include "control/permissions.hpp"

namespace secbox::control {
namespace {

const std::string kDir = "/var/lib/secbox/compose/frigate";

Result<void> check(const std::string& service_body, const ComposeAllowance& a = {}) {
  return check_compose_privileges("services:\n  cam:\n    image: localhost/frigate:1\n" + service_body, kDir, a,
                                  "frigate");
}

TEST(ComposePolicy, EachPrivilegedOptionIsRefusedNamingTheServiceAndTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"    privileged: true\n", "privileged"},
      {"    network_mode: host\n", "network_mode"},
      {"    pid: host\n", "pid"},
      {"    ipc: host\n", "ipc"},
      {"    userns_mode: host\n", "userns_mode"},
      {"    cap_add: [SYS_ADMIN]\n", "cap_add"},
      {"    devices: [\"/dev/bus/usb:/dev/bus/usb\"]\n", "devices"},
      {"    security_opt: [\"seccomp=unconfined\"]\n", "security_opt"},
      {"    volumes: [\"/:/host\"]\n", "volumes"},
      {"    volumes:\n      - type: bind\n        source: /etc\n        target: /x\n", "volumes"},
      {"    volumes: [\"../../../../:/up\"]\n", "volumes"},
      {"    volumes: [\"~/.ssh:/k\"]\n", "volumes"},
      {"    env_file: /etc/secbox/secbox.env\n", "env_file"},
      {"    privileged: ${PRIV}\n", "privileged"},
      {"    network_mode: ${NET}\n", "network_mode"},
  };
  for (const auto& [body, key] : cases) {
    auto r = check(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, Errc::forbidden);
    EXPECT_NE(r.error().message.find("service cam"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
    ComposeAllowance a;
    a.allow.insert(key);
    EXPECT_TRUE(check(body, a) || std::string(body).find('$') != std::string::npos) << body;
  }
}

TEST(ComposePolicy, OrdinaryFilesAndTheProjectsOwnFolderNeedNothing) {
  EXPECT_TRUE(check("    privileged: false\n"
                    "    network_mode: \"service:other\"\n"
                    "    shm_size: 256mb\n"
                    "    volumes: [\"./config:/config\", \"data:/media\", \"/cache\"]\n"
                    "    env_file: [./frigate.env]\n"
                    "    environment:\n      PLUS: ${FRIGATE_PLUS}\n"));
}

TEST(ComposePolicy, MergeKeysTopLevelVolumesAndIncludesCannotSmuggleAnything) {
  auto merged = check_compose_privileges(
      "x-base: &base\n  privileged: true\nservices:\n  cam:\n    <<: *base\n    image: x\n", kDir, {}, "frigate");
  ASSERT_FALSE(merged);
  EXPECT_NE(merged.error().message.find("privileged"), std::string::npos);
  auto device = check_compose_privileges(
      "services:\n  cam:\n    image: x\n    volumes: [\"root:/host\"]\nvolumes:\n  root:\n    driver_opts:\n"
      "      type: none\n      o: bind\n      device: /\n",
      kDir, {}, "frigate");
  ASSERT_FALSE(device);
  EXPECT_NE(device.error().message.find("volume root"), std::string::npos) << device.error().message;
  EXPECT_FALSE(check_compose_privileges("include: [/etc/other.yaml]\nservices:\n  a:\n    image: x\n", kDir, {}, "p"));
  EXPECT_FALSE(check("    extends:\n      file: /etc/x.yaml\n      service: y\n"));
}

TEST(ComposePolicy, AllowedMountsAreHostPathsAndWhatLiesUnderThem) {
  ComposeAllowance a;
  a.allow = {"volumes", "devices"};
  a.mounts = std::vector<std::string>{"/etc/localtime", "/media/frigate/"};
  EXPECT_TRUE(check("    volumes: [\"/etc/localtime:/etc/localtime:ro\", \"/media/frigate/clips:/clips\"]\n", a));
  auto outside = check("    volumes: [\"/media/frigate/../../etc:/x\"]\n", a);
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message.find("not under compose.projects.frigate.mounts"), std::string::npos)
      << outside.error().message;
  EXPECT_FALSE(check("    volumes: [\"/media/frigatex:/x\"]\n", a));
  EXPECT_FALSE(check("    volumes: [\"${MEDIA}:/x\"]\n", a)) << "a path from a variable cannot be judged";
}

TEST(ComposePolicy, ControlJsonNamesTheAllowancePerProject) {
  auto p = Permissions::parse(
      R"({"compose": {"projects": {"frigate": {"allow": ["devices", "volumes"], "mounts": ["/dev/bus/usb"]}}}})");
  ASSERT_TRUE(p) << p.error().message;
  auto frigate = p.value().compose_allowance("frigate");
  EXPECT_EQ(frigate.allow.count("devices"), 1u);
  ASSERT_TRUE(frigate.mounts);
  EXPECT_EQ(frigate.mounts->front(), "/dev/bus/usb");
  EXPECT_TRUE(p.value().compose_allowance("relay").allow.empty());
  for (const char* bad : {R"({"compose": {"projects": {"a": {"allow": ["root"]}}}})",
                          R"({"compose": {"projects": {"a": {"mounts": ["relative"]}}}})",
                          R"({"compose": {"projects": {"a": {"names": []}}}})", R"({"compose": {"allow": []}})"}) {
    auto r = Permissions::parse(bad);
    EXPECT_FALSE(r) << bad;
  }
}

}  // namespace
}  // namespace secbox::control
