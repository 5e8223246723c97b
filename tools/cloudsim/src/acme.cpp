#include "acme.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/certificates.hpp"
#include "common/http_client.hpp"
#include "common/process.hpp"

extern char** environ;

namespace secbox::cloudsim {
namespace {

using namespace std::chrono_literals;

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto colon = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, colon - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A long-running child in a process group of its own, its output in `log`.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::string& log) {
  // Everything the child needs is made before the fork (the simulator has
  // threads: between fork and exec only async-signal-safe calls).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  // Gone with the simulator, however it ends (a SIGTERM's default action
  // runs no destructor).
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(1);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  const int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0) ::dup2(null, 0);
  ::execvpe(args[0], args.data(), envp.data());
  ::_exit(127);
}

void stop_child(pid_t pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGTERM);
  for (int i = 0; i < 30; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(100ms);
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

struct AcmeIssuer::Impl {
  std::string dir, roots, listener_ca, dns_script;
  int acme_port = 0, management_port = 0, dns_port = 0, dns_management_port = 0;
  pid_t pebble = -1, challenges = -1;
  std::mutex mu;  // one lego at a time
  int issued = 0;

  void shutdown() {
    stop_child(pebble);
    stop_child(challenges);
    pebble = challenges = -1;
  }
  ~Impl() { shutdown(); }
};

AcmeIssuer::AcmeIssuer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AcmeIssuer::~AcmeIssuer() = default;

Result<std::unique_ptr<AcmeIssuer>> AcmeIssuer::start(const std::string& dir) {
  for (const char* program : {"pebble", "pebble-challtestsrv", "lego"}) {
    if (!on_path(program))
      return Error{Errc::unavailable, std::string(program) + " is not installed"};
  }
  auto i = std::make_unique<Impl>();
  i->dir = dir;
  ::mkdir(dir.c_str(), 0700);
  // pebble's own HTTPS listener: Debian ships no certificate for it.
  auto ca =
      make_self_signed({"cloudsim ACME listener CA", {}, {}, std::chrono::hours(24 * 30), true});
  if (!ca) return ca.error();
  auto listener = make_signed(
      {"127.0.0.1", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(24 * 30), false}, ca.value());
  if (!listener) return listener.error();
  i->listener_ca = dir + "/listener-ca.pem";
  if (auto w = write_file_atomically(i->listener_ca, ca.value().cert_pem, {0644, std::nullopt}); !w)
    return w.error();
  if (auto w = write_file_atomically(dir + "/listener.pem", listener.value().cert_pem,
                                     {0644, std::nullopt});
      !w)
    return w.error();
  if (auto w = write_file_atomically(dir + "/listener.key", listener.value().key_pem); !w)
    return w.error();
  i->acme_port = free_port();
  i->management_port = free_port();
  i->dns_port = free_port();
  i->dns_management_port = free_port();
  const int http_port = free_port(), tls_port = free_port();
  const nlohmann::json config{
      {"pebble",
       {{"listenAddress", "127.0.0.1:" + std::to_string(i->acme_port)},
        {"managementListenAddress", "127.0.0.1:" + std::to_string(i->management_port)},
        {"certificate", dir + "/listener.pem"},
        {"privateKey", dir + "/listener.key"},
        {"httpPort", http_port},
        {"tlsPort", tls_port},
        {"ocspResponderURL", ""},
        {"externalAccountBindingRequired", false}}}};
  if (auto w = write_file_atomically(dir + "/pebble.json", config.dump()); !w) return w.error();
  // DNS-01 through the challenge server's management API, as lego's exec
  // provider calls it: present|cleanup <fqdn> <value>.
  i->dns_script = dir + "/dns-exec.sh";
  const std::string mgmt = "http://127.0.0.1:" + std::to_string(i->dns_management_port);
  const std::string script =
      "#!/bin/sh\n"
      "case \"$1\" in\n"
      "  present) curl -fsS -X POST -d \"{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}\" " +
      mgmt +
      "/set-txt ;;\n"
      "  cleanup) curl -fsS -X POST -d \"{\\\"host\\\":\\\"$2\\\"}\" " +
      mgmt +
      "/clear-txt ;;\n"
      "esac\n";
  if (auto w = write_file_atomically(i->dns_script, script, {0700, std::nullopt}); !w)
    return w.error();
  const std::string dns = "127.0.0.1:" + std::to_string(i->dns_port);
  i->challenges = spawn({"pebble-challtestsrv", "-dns01", dns, "-management",
                         "127.0.0.1:" + std::to_string(i->dns_management_port), "-http01", "",
                         "-https01", "", "-tlsalpn01", ""},
                        {}, dir + "/challtestsrv.log");
  i->pebble = spawn({"pebble", "-config", dir + "/pebble.json", "-dnsserver", dns},
                    {"PEBBLE_VA_NOSLEEP=1"}, dir + "/pebble.log");
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!(listening(i->acme_port) && listening(i->management_port) &&
           listening(i->dns_management_port))) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Error{Errc::unavailable, "pebble did not start (see " + dir + "/pebble.log)"};
    }
    std::this_thread::sleep_for(100ms);
  }
  // The root pebble issues under: new at each start.
  HttpRequest get_root;
  get_root.url = "https://127.0.0.1:" + std::to_string(i->management_port) + "/roots/0";
  get_root.ca_file = i->listener_ca;
  get_root.accept = "*/*";
  auto root = get(get_root);
  if (!root || root.value().status != 200)
    return Error{Errc::unavailable, "pebble's root could not be read"};
  i->roots = dir + "/acme-root.pem";
  if (auto w = write_file_atomically(i->roots, root.value().body, {0644, std::nullopt}); !w)
    return w.error();
  return std::unique_ptr<AcmeIssuer>(new AcmeIssuer(std::move(i)));
}

const std::string& AcmeIssuer::roots_file() const { return impl_->roots; }

Result<std::string> AcmeIssuer::issue(const std::string& csr_pem) {
  std::lock_guard lock(impl_->mu);
  auto& i = *impl_;
  const std::string work = i.dir + "/order-" + std::to_string(++i.issued);
  ::mkdir(work.c_str(), 0700);
  if (auto w = write_file_atomically(work + "/request.csr", csr_pem); !w) return w.error();
  ProcessOptions p;
  p.argv = {"lego",
            "--server",
            "https://127.0.0.1:" + std::to_string(i.acme_port) + "/dir",
            "--accept-tos",
            "--email",
            "cloudsim@example.com",
            "--path",
            work,
            "--dns",
            "exec",
            "--dns.disable-cp",
            "--dns.resolvers",
            "127.0.0.1:" + std::to_string(i.dns_port),
            "--csr",
            work + "/request.csr",
            "run"};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const char* extra :
       {"EXEC_SEQUENCE_INTERVAL=1", "EXEC_POLLING_INTERVAL=1", "EXEC_PROPAGATION_TIMEOUT=30"}) {
    env.emplace_back(extra);
  }
  env.push_back("EXEC_PATH=" + i.dns_script);
  env.push_back("LEGO_CA_CERTIFICATES=" + i.listener_ca);
  p.env = env;
  p.cwd = work;
  p.timeout = 120s;
  auto ran = run_process(p);
  if (!ran) return ran.error();
  if (!ran.value().succeeded()) return Error{Errc::unavailable, "lego " + ran.value().describe()};
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir((work + "/certificates").c_str()), ::closedir);
  while (d) {
    auto* e = ::readdir(d.get());
    if (!e) break;
    const std::string file = e->d_name;
    const auto ends = [&](const std::string& tail) {
      return file.size() > tail.size() &&
             file.compare(file.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends(".crt") && !ends(".issuer.crt"))
      return read_file(work + "/certificates/" + file, 64 * 1024);
  }
  return Error{Errc::unavailable, "lego left no certificate in " + work};
}

void AcmeIssuer::shutdown() { impl_->shutdown(); }

void AcmeIssuer::add_a(const std::string& host, const std::string& address) {
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(impl_->dns_management_port) + "/add-a";
  req.json_body = nlohmann::json{{"host", host + "."}, {"addresses", {address}}}.dump();
  (void)post_json(req);
}

}  // namespace secbox::cloudsim
