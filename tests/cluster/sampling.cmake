# Sampling per analysis in one decode (issue 13 item 6): real processes.
framehive_add_test(sampling_cluster_test
  SOURCES cluster/sampling_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
add_dependencies(sampling_cluster_test framehive framehive-coordinator framehive-node framehive-worker)
