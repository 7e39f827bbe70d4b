# Mutual TLS and protected mode with the real binaries (issue 11).
framehive_add_test(tls_test
  SOURCES cluster/tls_test.cpp
  LIBS framehive::common framehive::identity nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(tls_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(tls_test framehive framehive-coordinator framehive-node framehive-worker)
