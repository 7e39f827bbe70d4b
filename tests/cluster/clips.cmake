# Clips and the digest from one decode (issue 13 items 1-3, 7): real processes.
framehive_add_test(clips_cluster_test
  SOURCES cluster/clips_test.cpp
  LIBS framehive::common nlohmann_json::nlohmann_json
  DEFINITIONS FRAMEHIVE_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300)
target_include_directories(clips_cluster_test PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(clips_cluster_test framehive framehive-coordinator framehive-node framehive-worker)
