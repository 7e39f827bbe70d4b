# The data path without a shared disk (issue 12): upload, fetch, artifacts,
# with the real binaries on loopback.
framehive_add_test(data_path_test
  SOURCES cluster/data_path_test.cpp
  LIBS framehive::common framehive::identity nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 600)
add_dependencies(data_path_test framehive framehive-coordinator framehive-node framehive-worker)
