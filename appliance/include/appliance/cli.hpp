#pragma once
// The `secbox` command line. Exit codes: 0 success, 1 failure at run time,
// 2 bad usage or bad configuration, 3 database schema newer than this binary.
#include <iosfwd>
#include <string>
#include <vector>

#include "appliance/config.hpp"

namespace secbox::appliance {

int main_cli(int argc, char** argv);

// The offline checks behind `secbox env check` and `secbox doctor`; they print
// to out and return the exit code.
int env_check(const Config& config, const std::string& compose_file, std::ostream& out);
int doctor(const Config& config, std::ostream& out);

}  // namespace secbox::appliance
