#include "update/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <sstream>

#include "common/atomic_file.hpp"
#include "common/ids.hpp"
#include "update/versions.hpp"

namespace secbox::update {
namespace {

constexpr std::size_t kMaxFile = 4096;
constexpr std::size_t kMaxDetail = 500;

Error invalid(const std::string& what) { return Error{Errc::invalid, what}; }

std::map<std::string, std::string> parse_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::optional<std::int64_t> number(const std::string& s) {
  if (s.empty() || s.size() > 18 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(s);
}

// One line of printable ASCII (so it is valid JSON text, whatever the file
// held): a detail that came from a child's message, a URL, a hostile file.
std::string one_line(std::string s) {
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == '\n' || u == '\r' || u == '\t') {
      c = ' ';
    } else if (u < 0x20 || u > 0x7e) {
      c = '?';
    }
  }
  if (s.size() > kMaxDetail) s.resize(kMaxDetail);
  return s;
}

bool known_phase(const std::string& p, bool outcome) {
  static const char* const kSteps[] = {"manifest", "download", "verify",
                                       "stage",    "switch",   "trial"};
  static const char* const kEnds[] = {"rollback", "rollback-failed", "done"};
  for (const char* k : kSteps) {
    if (p == k) return true;
  }
  if (outcome) {
    for (const char* k : kEnds) {
      if (p == k) return true;
    }
  }
  return false;
}

}  // namespace

bool valid_attempt(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

nlohmann::json UpdateOutcome::data() const {
  return {{"fromVersion", from},
          {"toVersion", to},
          {"ok", ok},
          {"phase", phase},
          {"detail", one_line(detail)}};
}

std::string UpdateOutcome::client_id() const {
  return name_uuid("secbox-update-result:" + attempt);
}

std::string state_path(const std::string& root) { return root + "/update.state"; }
std::string results_dir(const std::string& root) { return root + "/results"; }

Result<std::optional<UpdateState>> load_state(const std::string& root) {
  auto text = read_file(state_path(root), kMaxFile);
  if (!text) {
    if (text.error().code == Errc::not_found) return std::optional<UpdateState>{};
    return invalid("cannot read " + state_path(root) + ": " + text.error().message);
  }
  auto s = parse_state(text.value());
  if (!s) return invalid(state_path(root) + ": " + s.error().message);
  return std::optional<UpdateState>{std::move(s).value()};
}

Result<UpdateState> parse_state(std::string_view text) {
  if (text.size() > kMaxFile) return invalid("the state is too large");
  auto kv = parse_lines(std::string(text));
  UpdateState s;
  s.attempt = kv["ATTEMPT"];
  s.from = kv["FROM"];
  s.to = kv["TO"];
  s.phase = kv["PHASE"];
  if (!valid_attempt(s.attempt)) return invalid("ATTEMPT is not an attempt id");
  if (!VersionStore::valid_version(s.from) || !VersionStore::valid_version(s.to)) {
    return invalid("FROM or TO is not a version name");
  }
  if (!known_phase(s.phase, false)) return invalid("PHASE is not a phase");
  auto field = [&](const char* key, std::int64_t& into) {
    auto it = kv.find(key);
    if (it == kv.end() || it->second.empty()) return true;
    auto n = number(it->second);
    if (!n) return false;
    into = *n;
    return true;
  };
  std::int64_t starts = 0;
  if (!field("SWITCHED_AT", s.switched_at) || !field("DEADLINE", s.deadline) ||
      !field("TRIAL_S", s.trial_s) || !field("STARTS", starts) || starts > 1000) {
    return invalid("a number field is not a number");
  }
  s.starts = static_cast<int>(starts);
  return s;
}

Result<void> save_state(const std::string& root, const UpdateState& s) {
  if (!valid_attempt(s.attempt) || !VersionStore::valid_version(s.from) ||
      !VersionStore::valid_version(s.to) || !known_phase(s.phase, false)) {
    return invalid("refusing to write an update state with a bad field");
  }
  std::ostringstream out;
  out << "# The update under way (docs/updates.md); read by secbox-recover.\n"
      << "ATTEMPT=" << s.attempt << "\nFROM=" << s.from << "\nTO=" << s.to << "\nPHASE=" << s.phase
      << "\nSWITCHED_AT=" << s.switched_at << "\nDEADLINE=" << s.deadline
      << "\nTRIAL_S=" << s.trial_s << "\nSTARTS=" << s.starts << "\n";
  auto w =
      write_file_atomically(state_path(root), out.str(), AtomicWriteOptions{0644, std::nullopt});
  if (!w) return Error{w.error().code, "cannot write the update state: " + w.error().message};
  return ok();
}

void remove_state(const std::string& root) { ::unlink(state_path(root).c_str()); }

std::vector<StoredOutcome> load_outcomes(const std::string& root, std::size_t max) {
  std::vector<StoredOutcome> out;
  const std::string dir = results_dir(root);
  // Outcomes are regular files in a real folder: a link there (to /etc, say)
  // is not a pile of failed rollbacks to report to the cloud.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name.find(".tmp") != std::string::npos) continue;
    if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  if (names.size() > max) names.resize(max);
  for (const auto& name : names) {
    StoredOutcome s;
    s.file = dir + "/" + name;
    auto text = read_file(s.file, kMaxFile);
    s.outcome = parse_outcome(text ? text.value() : std::string(), name);
    out.push_back(std::move(s));
  }
  return out;
}

Result<void> save_outcome(const std::string& root, const UpdateOutcome& o) {
  if (!valid_attempt(o.attempt))
    return invalid("refusing to write an outcome with a bad attempt id");
  const std::string dir = results_dir(root);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return invalid("cannot make " + dir);
  std::ostringstream out;
  out << "ATTEMPT=" << o.attempt << "\nFROM=" << o.from << "\nTO=" << o.to
      << "\nOK=" << (o.ok ? 1 : 0) << "\nPHASE=" << o.phase << "\nDETAIL=" << one_line(o.detail)
      << "\n";
  auto w = write_file_atomically(dir + "/" + o.attempt, out.str(),
                                 AtomicWriteOptions{0644, std::nullopt});
  if (!w) return invalid("cannot write the update's outcome: " + w.error().message);
  return ok();
}

void remove_outcome(const std::string& file) { ::unlink(file.c_str()); }

UpdateOutcome parse_outcome(std::string_view text, const std::string& name) {
  auto kv = parse_lines(std::string(text.substr(0, kMaxFile)));
  UpdateOutcome o;
  o.attempt = kv["ATTEMPT"];
  o.from = kv["FROM"];
  o.to = kv["TO"];
  o.ok = kv["OK"] == "1" || kv["OK"] == "true";
  o.phase = kv["PHASE"];
  o.detail = one_line(kv["DETAIL"]);
  if (!valid_attempt(o.attempt))
    o.attempt = valid_attempt(name) ? name : "unreadable-" + name_uuid(name);
  if (!VersionStore::valid_version(o.from)) o.from = "unknown";
  if (!VersionStore::valid_version(o.to)) o.to = "unknown";
  if (!known_phase(o.phase, true)) {
    o.ok = false;
    o.phase = "rollback-failed";
    o.detail = "the recorded outcome " + name.substr(0, 64) + " could not be read";
  }
  return o;
}

std::string ledger_path(const std::string& root) { return root + "/update.ledger"; }

Result<Ledger> parse_ledger(std::string_view text) {
  if (text.size() > 16 * 1024) return invalid("the ledger is too large");
  Ledger l;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("COUNTER=", 0) == 0) {
      auto n = number(line.substr(8));
      if (!n) return invalid("COUNTER is not a number");
      l.counter = static_cast<std::uint64_t>(*n);
    } else if (line.rfind("ROLLED_BACK=", 0) == 0) {
      const std::string rest = line.substr(12);
      const auto space = rest.find(' ');
      const std::string version = rest.substr(0, space);
      auto n = space == std::string::npos ? std::nullopt : number(rest.substr(space + 1));
      if (!VersionStore::valid_version(version) || !n)
        return invalid("a ROLLED_BACK line is not a version and a number");
      l.rolled_back[version] = std::max(l.rolled_back[version], static_cast<std::uint64_t>(*n));
    } else {
      return invalid("an unknown line");
    }
  }
  return l;
}

Result<Ledger> load_ledger(const std::string& root) {
  auto text = read_file(ledger_path(root), 16 * 1024);
  if (!text) {
    if (text.error().code == Errc::not_found) return Ledger{};
    return invalid("cannot read " + ledger_path(root) + ": " + text.error().message);
  }
  auto l = parse_ledger(text.value());
  if (!l) return invalid(ledger_path(root) + ": " + l.error().message);
  return l;
}

Result<void> save_ledger(const std::string& root, const Ledger& ledger) {
  std::vector<std::pair<std::uint64_t, std::string>> kept;
  for (const auto& [v, n] : ledger.rolled_back) kept.emplace_back(n, v);
  std::sort(kept.rbegin(), kept.rend());
  if (kept.size() > kMaxRolledBack) kept.resize(kMaxRolledBack);
  std::string text = "COUNTER=" + std::to_string(ledger.counter) + "\n";
  for (const auto& [n, v] : kept) text += "ROLLED_BACK=" + v + " " + std::to_string(n) + "\n";
  return write_file_atomically(ledger_path(root), text, AtomicWriteOptions{0644, std::nullopt});
}

}  // namespace secbox::update
