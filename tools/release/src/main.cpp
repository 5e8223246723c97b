// secbox-release: makes a release folder (tools/release/include/release/release.hpp).
//   secbox-release --daemon BIN --web DIR --version V --counter N --key KEY.pem --out DIR
//                  [--target linux-amd64] [--valid-days D] [--level L]
#include <iostream>
#include <string>
#include <vector>

#include "release/release.hpp"

namespace {

constexpr const char* kUsage =
    R"(Usage: secbox-release --daemon BIN --web DIR --version V --counter N --key KEY.pem --out DIR
                      [--target T] [--valid-days D] [--level L]

Makes a release (cloud-protocol 7.6) in DIR: secbox.tar.zst (BIN with V
stamped in as its built-in version, and the guard app DIR), manifest.json
(product secbox, target T, default this machine's, version V, counter N, the
bundle's size and SHA-256, valid D days, default 30) and manifest.sig (its
Ed25519 signature by KEY.pem). L is the zstd level (default 19).
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  secbox::release::ReleaseRequest q;
  bool have_counter = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return std::cout << kUsage, 0;
    if (i + 1 >= args.size())
      return std::cerr << "secbox-release: " << a << " needs a value\n" << kUsage, 2;
    const std::string v = args[++i];
    try {
      if (a == "--daemon")
        q.daemon = v;
      else if (a == "--web")
        q.web_dir = v;
      else if (a == "--version")
        q.version = v;
      else if (a == "--counter")
        q.counter = std::stoull(v), have_counter = true;
      else if (a == "--key")
        q.key_file = v;
      else if (a == "--out")
        q.out_dir = v;
      else if (a == "--target")
        q.target = v;
      else if (a == "--valid-days")
        q.valid_s = std::stoll(v) * 24 * 3600;
      else if (a == "--level")
        q.zstd_level = std::stoi(v);
      else
        return std::cerr << "secbox-release: unexpected argument " << a << "\n" << kUsage, 2;
    } catch (const std::exception&) {
      return std::cerr << "secbox-release: " << a << " needs a number\n", 2;
    }
  }
  if (q.daemon.empty() || q.web_dir.empty() || q.version.empty() || !have_counter ||
      q.key_file.empty() || q.out_dir.empty()) {
    return std::cerr << "secbox-release: --daemon, --web, --version, --counter, --key and --out "
                        "are required\n"
                     << kUsage,
           2;
  }
  auto r = secbox::release::make_release(q);
  if (!r) return std::cerr << "secbox-release: " << r.error().message << "\n", 1;
  const auto& m = r.value().fields;
  std::cout << "Release " << m.version << " (" << m.target << ", counter " << m.counter << ") in "
            << r.value().dir << ": bundle " << m.size << " bytes, sha256 " << m.sha256 << ".\n";
  return 0;
}
