#pragma once
// The result type of synchronous functions that can fail, and the error they
// carry: a short machine-readable code (a protocol phase name, "not_found", …)
// and a sentence for people.
#include <string>

#include <boost/outcome/result.hpp>

namespace secbox {

struct Error {
  std::string code;
  std::string message;
};

template <class T>
using Result = boost::outcome_v2::result<T, Error, boost::outcome_v2::policy::terminate>;

inline auto ok() { return boost::outcome_v2::success(); }

inline Error make_error(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

}  // namespace secbox
