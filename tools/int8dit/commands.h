// The `int8dit` program's subcommands. Each lives in its own file (cmd_<name>.cpp), takes the
// arguments after its name and returns the process exit code (0 ok, 1 failure, 2 usage error).
// To add one: write cmd_<name>.cpp (tools/CMakeLists.txt globs it), declare it here and add a row
// to kCommands in main.cpp. Every subcommand answers --help.
#pragma once

#include <string>
#include <vector>

int cmd_info(const std::vector<std::string>& args);   // cmd_info.cpp
int cmd_check(const std::vector<std::string>& args);  // cmd_check.cpp
int cmd_tune(const std::vector<std::string>& args);   // cmd_tune.cpp
int cmd_bench(const std::vector<std::string>& args);  // cmd_bench.cpp
