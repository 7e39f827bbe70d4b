# JSON logs (issue 14 item 4): every line of a coordinator's and a node's
# (and its workers') log parses, with the promised fields.
framehive_add_test(logging_cluster_test
  SOURCES cluster/logging_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(logging_cluster_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(logging_cluster_test framehive framehive-coordinator framehive-node framehive-worker)
