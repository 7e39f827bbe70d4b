# Machines that share nothing but a network (issue 12): the real binaries on
# hosts made of network and mount namespaces (tests/support/netns.hpp). Needs
# root; skips, saying why, where namespaces cannot be made. Its test names
# start with "multihost." so that `ctest -R multihost` selects them.
framehive_add_test(multihost_test
  SOURCES cluster/multihost_test.cpp
  LIBS framehive::common framehive::identity nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TEST_PREFIX "multihost."
  TIMEOUT 300)
target_include_directories(multihost_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(multihost_test framehive framehive-coordinator framehive-node framehive-worker)
