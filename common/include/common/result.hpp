#pragma once
// The result type of synchronous functions that can fail, and the error they
// carry: a condition a caller can decide by (Errc, one spelling each) and a
// sentence for people. A protocol phase (§7.3, §7.6) is not an error
// condition: the code that runs the phases names them (ComposeOutcome::phase,
// the update's Failure::phase).
#include <iosfwd>
#include <string>
#include <string_view>

#include <boost/outcome/result.hpp>

namespace secbox {

enum class Errc {
  invalid,       // input that fails its checks: an argument, a file's content, a peer's answer
  not_found,     // what was named does not exist: a file, a row, a camera, a project, a tool
  too_large,     // over its size limit
  forbidden,     // the box's policy does not allow it (control.json)
  busy,          // a one-at-a-time task is running
  queue_full,    // the outbound queue is at its cap
  unavailable,   // a service the call needs is not there now (the database, Frigate, a tool): try
                 // later
  network,       // a transfer failed on its way: connect, TLS, an HTTP status
  timeout,       // no answer within the time allowed
  disconnected,  // the session closed before the answer
  refused,       // the peer answered with an error of its own (its code leads the message)
  io,            // the local file system or the system refused
  spawn,         // a child process could not start, or did not finish well
  database,      // the database refused a statement
  schema_newer,  // the database was migrated by a newer version of the box
  config,        // the box's own settings are unusable
  internal,      // a bug or a state that should not be
};

// "invalid", "not_found", …: for logs and tests. Any thread.
std::string_view to_string(Errc code);
std::ostream& operator<<(std::ostream& out, Errc code);  // its to_string (test failures print it)

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

template <class T>
using Result = boost::outcome_v2::result<T, Error, boost::outcome_v2::policy::terminate>;

inline auto ok() { return boost::outcome_v2::success(); }

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace secbox
