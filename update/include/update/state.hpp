#pragma once
// What an update leaves on disk for the next start and for secbox-recover,
// the root-run shell script that does not depend on any version's binary
// (docs/updates.md). Both files are KEY=VALUE lines, so that POSIX sh reads
// them with sed:
//
//   <root>/update.state    the attempt under way: written when update.apply
//                          starts, its PHASE advanced as it goes, PHASE=trial
//                          (with SWITCHED_AT and DEADLINE) just before the
//                          `current` link is switched; removed when the
//                          attempt ends (reported, committed or rolled back).
//   <root>/results/<attempt>
//                          an outcome not yet queued as `update_result`
//                          (cloud-protocol §6): a rollback done by
//                          secbox-recover, or a failure found at start.
//
// Blocking (files): a worker, the CLI, or before the loop runs. Every value
// read back is checked: these files are in a folder the daemon can write.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace secbox::update {

struct UpdateState {
  std::string attempt;  // [A-Za-z0-9-]{1,64}: the attempt's id, and its result's clientId seed
  std::string from;     // the version that ran when the update began
  std::string to;       // the version being installed
  std::string phase;    // download, verify, stage, switch or trial
  std::int64_t switched_at = 0;  // Unix seconds; 0 before the switch
  std::int64_t deadline = 0;     // Unix seconds: no commit by then and it is rolled back
  std::int64_t trial_s = 0;      // how long it must run after welcome
  int starts = 0;                // starts of `to` counted by secbox-recover
};

struct UpdateOutcome {
  std::string attempt;
  std::string from, to;
  bool ok = false;
  std::string phase;  // cloud-protocol §7.6
  std::string detail;
  // The update_result event's data (§6).
  nlohmann::json data() const;
  // The event's clientId: the same for every report of this attempt, so the
  // cloud counts one result for it however often it is sent.
  std::string client_id() const;
};

bool valid_attempt(const std::string& id);

std::string state_path(const std::string& root);
std::string results_dir(const std::string& root);

// nullopt when there is no state file; an Error ("invalid_state") when it
// cannot be read or holds a value out of its rules.
Result<std::optional<UpdateState>> load_state(const std::string& root);
// The same from a state file's text (pure; "invalid_state").
Result<UpdateState> parse_state(std::string_view text);
Result<void> save_state(const std::string& root, const UpdateState& state);
void remove_state(const std::string& root);

// Outcomes waiting to be queued, in name order; unreadable ones are returned
// as failures naming what was wrong (and still removed by remove_outcome).
struct StoredOutcome {
  std::string file;
  UpdateOutcome outcome;
};
std::vector<StoredOutcome> load_outcomes(const std::string& root, std::size_t max = 32);
Result<void> save_outcome(const std::string& root, const UpdateOutcome& outcome);
void remove_outcome(const std::string& file);
// An outcome file's text as load_outcomes reads it (pure): a value out of
// its rules becomes "unknown", an unreadable phase a rollback-failed outcome.
UpdateOutcome parse_outcome(std::string_view text, const std::string& file_name);

// What the box keeps of its releases, with its known-good state, in
// <root>/update.ledger (KEY=VALUE lines):
//   COUNTER=<n>                    the highest counter of a committed version:
//                                  no manifest below it is installed again
//   ROLLED_BACK=<version> <n>      a version rolled back, and the counter it
//                                  came with: refused until a higher counter
// The counter moves only when a version commits. At most kMaxRolledBack
// versions are remembered (the lowest counters go first).
inline constexpr std::size_t kMaxRolledBack = 64;
struct Ledger {
  std::uint64_t counter = 0;
  std::map<std::string, std::uint64_t> rolled_back;
};
std::string ledger_path(const std::string& root);
// An unreadable ledger is an Error: the caller refuses updates rather than
// forget its counter.
Result<Ledger> load_ledger(const std::string& root);
Result<Ledger> parse_ledger(std::string_view text);
Result<void> save_ledger(const std::string& root, const Ledger& ledger);

}  // namespace secbox::update
