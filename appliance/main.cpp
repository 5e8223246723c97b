#include "appliance/cli.hpp"

int main(int argc, char** argv) { return secbox::appliance::main_cli(argc, argv); }
